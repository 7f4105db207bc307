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
