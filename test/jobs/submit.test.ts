// shared/jobs/submit.ts on its own (no HTTP, no Redis): the order of the steps, what each refusal
// leaves behind, and that the envelope it queues is one a worker accepts with the tier it says.
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config";
import {
  createSigner,
  generateEd25519KeyPair,
  type Signer,
  verifyEd25519,
} from "../../shared/crypto";
import {
  type JobAuditEvent,
  type JobCaller,
  type JobPolicyDecision,
  type JobPolicyRequest,
  jobRequestSchema,
  policyVerdict,
  type SignedEnvelope,
  type SubmitJobPorts,
  submitJob,
  verifyEnvelope,
} from "../../shared/jobs";

const config = loadConfig();
const T0 = Date.parse("2026-01-01T00:00:00Z");
const settings = {
  defaultTier: "gvisor" as const,
  thresholds: { medium: 0.3, high: 0.7 },
  envelopeTtlMs: 3600_000,
};
const lowRisk = {
  dataSensitivity: 0,
  codeTrustLevel: 1,
  networkAccess: 0,
  filesystemAccess: 0,
  externalApis: 0,
};
const request = (extra: Record<string, unknown> = {}) =>
  jobRequestSchema(config.sandbox).parse({
    image: "sigil/busybox:1",
    command: ["true"],
    ...extra,
  });
const caller = (trust: number): JobCaller => ({
  keyid: "agent-kid",
  role: "agent",
  subject: "alice",
  groups: ["dev"],
  trust,
});

interface World {
  ports: SubmitJobPorts;
  steps: string[];
  audits: JobAuditEvent[];
  asked: JobPolicyRequest[];
  queued: { signed: SignedEnvelope; hash: string }[];
}

let service: Signer;
beforeAll(async () => {
  service = await createSigner((await generateEd25519KeyPair()).secretKey);
});

function world(decision: JobPolicyDecision, admit: () => Promise<void> = async () => {}): World {
  const steps: string[] = [];
  const audits: JobAuditEvent[] = [];
  const asked: JobPolicyRequest[] = [];
  const queued: World["queued"] = [];
  const ports: SubmitJobPorts = {
    settings,
    now: () => T0,
    admit: async () => {
      steps.push("admit");
      await admit();
    },
    evaluate: async (req) => {
      steps.push("evaluate");
      asked.push(req);
      return decision;
    },
    signer: service,
    audit: async (e) => {
      steps.push(`audit:${e.eventType}`);
      audits.push(e);
    },
    enqueue: async (signed, hash) => {
      steps.push("enqueue");
      queued.push({ signed, hash });
    },
  };
  return { ports, steps, audits, asked, queued };
}

const allow: JobPolicyDecision = { decision: "allow", enforced: true, decisionId: "d-1" };

describe("submitJob", () => {
  it("admits, asks the policy, audits, then queues an envelope a worker accepts", async () => {
    const w = world(allow);
    const out = await submitJob(
      {
        request: request({ risk: lowRisk }),
        caller: caller(1),
        jobId: "j-1",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toMatchObject({ outcome: "queued", jobId: "j-1", tier: "docker" });
    expect(w.steps).toEqual(["admit", "evaluate", "audit:job.submitted", "enqueue"]);
    // The policy sees the job and the server's agent.* (never the caller's say-so).
    expect(w.asked[0]).toMatchObject({
      action: "execute",
      resource: "sandbox",
      context: {
        jobId: "j-1",
        tier: "docker",
        kind: "command",
        network: false,
        agent: { kid: "agent-kid", subject: "alice", role: "agent", groups: ["dev"], trust: 1 },
        request: { time: "2026-01-01T00:00:00Z" },
      },
    });
    const { signed, hash } = w.queued[0]!;
    expect(signed.envelope.quota).toEqual({ queuedJobs: 5, runningJobs: 2 });
    expect(signed.envelope.policyDecisionId).toBe("d-1");
    expect(w.audits[0]!.details).toMatchObject({
      jobId: "j-1",
      envelopeHash: hash,
      decisionId: "d-1",
    });
    const verdict = await verifyEnvelope(signed, {
      serviceKey: async (kid) => (kid === service.kid ? service.publicKey : undefined),
      verify: verifyEd25519,
      sandbox: config.sandbox,
      defaultTier: settings.defaultTier,
      thresholds: settings.thresholds,
      now: T0 + 1000,
    });
    expect(verdict).toMatchObject({ ok: true, envelopeHash: hash });
  });

  it("bounds a declared codeTrustLevel by the key's trust: an untrusted key lands on gVisor", async () => {
    const w = world(allow);
    const out = await submitJob(
      {
        request: request({ risk: lowRisk }),
        caller: caller(0),
        jobId: "j-2",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toMatchObject({ outcome: "queued", tier: "gvisor" });
    expect(w.queued[0]!.signed.envelope.risk?.codeTrustLevel).toBe(0);
  });

  it("refuses network egress before admission, policy or audit", async () => {
    const w = world(allow);
    const out = await submitJob(
      {
        request: request({ network: { allow: [{ domain: "example.org", ports: [443] }] } }),
        caller: caller(1),
        jobId: "j-3",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toEqual({ outcome: "network-unavailable" });
    expect(w.steps).toEqual([]);
  });

  it("stops at admission: a refused admission asks no policy and audits nothing", async () => {
    const w = world(allow, async () => {
      throw new Error("queue full");
    });
    await expect(
      submitJob(
        {
          request: request(),
          caller: caller(1),
          jobId: "j-4",
          quota: { queuedJobs: 5, runningJobs: 2 },
        },
        w.ports,
      ),
    ).rejects.toThrow("queue full");
    expect(w.steps).toEqual(["admit"]);
  });

  it("a denial is audited job.denied and nothing is signed or queued", async () => {
    const w = world({ decision: "deny", enforced: true, reason: "no", decisionId: "d-9" });
    const out = await submitJob(
      {
        request: request(),
        caller: caller(1),
        jobId: "j-5",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toEqual({ outcome: "denied", decisionId: "d-9", reason: "no" });
    expect(w.steps).toEqual(["admit", "evaluate", "audit:job.denied"]);
    expect(w.queued).toEqual([]);
  });

  it("an audit that fails fails the submission before anything is queued", async () => {
    const w = world(allow);
    w.ports.audit = async () => {
      throw new Error("audit down");
    };
    await expect(
      submitJob(
        {
          request: request(),
          caller: caller(1),
          jobId: "j-6",
          quota: { queuedJobs: 5, runningJobs: 2 },
        },
        w.ports,
      ),
    ).rejects.toThrow("audit down");
    expect(w.queued).toEqual([]);
  });

  it("a policy's tier and data_sensitivity raise the job; the envelope says why", async () => {
    const w = world({
      decision: "allow_with_conditions",
      enforced: true,
      decisionId: "d-2",
      conditions: [
        { name: "min_tier", value: "docker" },
        { name: "sandbox_tier", value: "gvisor" },
        { name: "data_sensitivity", value: 0.9 },
      ],
    });
    const out = await submitJob(
      {
        request: request({ risk: lowRisk }),
        caller: caller(1),
        jobId: "j-7",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toMatchObject({ outcome: "queued", tier: "gvisor" });
    const e = w.queued[0]!.signed.envelope;
    expect(e.policyMinimumTier).toBe("gvisor");
    expect(e.risk?.dataSensitivity).toBe(0.9);
  });
});

describe("policyVerdict", () => {
  it("denies what it cannot enforce and an approval requirement; permissive mode does not", () => {
    expect(policyVerdict({ decision: "require_approval", enforced: true })).toMatchObject({
      denied: true,
    });
    expect(policyVerdict({ decision: "deny", enforced: false })).toEqual({ denied: false });
    expect(
      policyVerdict({
        decision: "allow_with_conditions",
        conditions: [{ name: "audit_trail", value: "detailed" }],
      }),
    ).toEqual({
      denied: true,
      reason: "policy condition audit_trail cannot be enforced on a sandbox job",
    });
    expect(
      policyVerdict({
        decision: "allow_with_conditions",
        conditions: [{ name: "data_sensitivity", value: 2 }],
      }),
    ).toMatchObject({ denied: true });
    expect(
      policyVerdict({
        decision: "allow_with_conditions",
        conditions: [
          { name: "sandbox_tier", value: "gvisor" },
          { name: "min_tier", value: "docker" },
        ],
      }),
    ).toEqual({ denied: false, minimumTier: "gvisor" });
  });
});

describe("a job that requires approval", () => {
  const needsApproval: JobPolicyDecision = {
    decision: "require_approval",
    enforced: true,
    decisionId: "d-9",
    approver: "supervisor",
    approvers: ["supervisor"],
    conditions: [
      { name: "supervisor_approval", value: true },
      { name: "sandbox_tier", value: "gvisor" },
    ],
  };

  it("holds for approval naming its approver; other obligations still apply", () => {
    expect(policyVerdict(needsApproval)).toEqual({
      denied: false,
      minimumTier: "gvisor",
      approval: { approver: "supervisor", approvers: ["supervisor"] },
    });
    // Naming no approver, or an obligation the route cannot enforce: denied.
    expect(policyVerdict({ ...needsApproval, approver: undefined })).toMatchObject({
      denied: true,
    });
    expect(
      policyVerdict({ ...needsApproval, conditions: [{ name: "audit_trail", value: "x" }] }),
    ).toMatchObject({ denied: true });
  });

  it("signs the envelope, opens the approval, audits, then holds it: nothing is queued", async () => {
    const w = world(needsApproval);
    const asked: unknown[] = [];
    const held: string[] = [];
    w.ports.settings = { ...settings, approvalWaitMs: 900_000 };
    w.ports.approval = {
      request: async (req) => {
        w.steps.push("approval");
        asked.push(req);
        return "0190aaaa-0000-7000-8000-000000000001";
      },
      hold: async (signed, _hash, approvalId) => {
        w.steps.push("hold");
        held.push(`${signed.envelope.jobId}:${approvalId}`);
      },
    };
    const out = await submitJob(
      {
        request: request(),
        caller: caller(1),
        jobId: "j-h",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toMatchObject({
      outcome: "awaiting_approval",
      approver: "supervisor",
      tier: "gvisor",
    });
    expect(w.steps).toEqual([
      "admit",
      "evaluate",
      "approval",
      "audit:job.awaiting_approval",
      "hold",
    ]);
    expect(w.queued).toEqual([]);
    expect(held).toEqual(["j-h:0190aaaa-0000-7000-8000-000000000001"]);
    expect(asked[0]).toMatchObject({ jobId: "j-h", approver: "supervisor", decisionId: "d-9" });
    if (out.outcome !== "awaiting_approval") throw new Error("not held");
    // The envelope outlives the wait for the answer.
    expect(Date.parse(out.signed.envelope.expiresAt) - T0).toBe(settings.envelopeTtlMs + 900_000);
  });

  it("without an approval workflow it is denied, as before", async () => {
    const w = world(needsApproval);
    const out = await submitJob(
      {
        request: request(),
        caller: caller(1),
        jobId: "j-d",
        quota: { queuedJobs: 5, runningJobs: 2 },
      },
      w.ports,
    );
    expect(out).toMatchObject({ outcome: "denied" });
    expect(w.queued).toEqual([]);
  });
});
