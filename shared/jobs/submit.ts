// Job submission (docs/http-api.md "Jobs", docs/governance.md): everything between a validated
// `POST /v1/jobs` body and a queued, signed envelope. The risk is bounded by the key's trust, the
// policy decides and may raise the tier or the data sensitivity, the envelope carries the inputs
// the worker re-derives the tier from, and each step is audited before the next. Every side
// effect is a port; functions/routes/jobs.ts parses, calls submitJob and maps outcomes to problems.
import { uuidV7 } from "../crypto";
import { type CallerIdentity, withServerAttributes } from "../policy/identity";
import type { Decision, JsonObject } from "../policy/schema";
import {
  boundedRisk,
  type DerivedRisk,
  type RiskInput,
  type RiskThresholds,
  selectTier,
  stricterTier,
  type Tier,
} from "../risk";
import { type EgressSettings, ruleRefusal } from "./egress";
import {
  type EnvelopeSigner,
  envelopeHash,
  type JobEnvelope,
  type JobQuota,
  type SignedEnvelope,
  signEnvelope,
} from "./envelope";
import { type JobRequest, type JobSpec, specFromRequest } from "./schema";

/** An audit event a job step appends: the shape of POST /v1/audit/events. */
export interface JobAuditEvent {
  eventType: string;
  agentId?: string;
  details: Record<string, unknown>;
}

/** What the policy engine is asked about a job: `execute` on `sandbox`. */
export interface JobPolicyRequest {
  action: "execute";
  resource: "sandbox";
  context: JsonObject;
}

/** The part of the policy engine's Decision a submission acts on. */
export type JobPolicyDecision = Pick<
  Decision,
  "decision" | "reason" | "conditions" | "approver" | "approvers"
> & {
  /** false only in permissive mode: the decision is reported, not enforced. */
  enforced?: boolean;
  decisionId?: string;
  policySetVersion?: string;
};

/** The authenticated caller of a jobs route. */
export interface JobCaller {
  keyid: string;
  role: string;
  subject: string | null;
  /** The key's admin-set groups and code trust (its record): agent.* in the policy context. */
  groups: readonly string[];
  trust: number;
}

/** Policy conditions that name a minimum tier; any condition not understood here fails closed. */
const TIER_CONDITIONS = new Set(["sandbox_tier", "min_tier"]);
/** A policy's `data_sensitivity = x` (x in [0, 1]) raises the job's dataSensitivity to x. */
const SENSITIVITY_CONDITION = "data_sensitivity";

export interface SubmitSettings {
  defaultTier: Tier;
  thresholds: RiskThresholds;
  /** How long the envelope stays runnable after submit (queue wait and retries). */
  envelopeTtlMs: number;
  /** Added to a held job's envelope lifetime: the time its approval may take ([approvals] timeout_s). */
  approvalWaitMs?: number;
  /** Sandbox egress when `[network] egress` is on; absent: every job asking for network is refused. */
  egress?: EgressSettings;
}

/** What a held job's approval is opened for: the job, its policy context and the decision. */
export interface JobApprovalRequest {
  jobId: string;
  caller: JobCaller;
  /** The job's policy context without the server's agent.* and request.time (what is bound). */
  context: JsonObject;
  decision: JobPolicyDecision;
  approver: string;
  approvers: string[];
  decisionId: string;
}

/** The approval workflow for jobs (docs/governance.md "Approvals"); absent: such jobs are denied. */
export interface JobApprovalPorts {
  /** Opens an approval bound to the request and to the jobId; resolves with its id. */
  request(req: JobApprovalRequest): Promise<string>;
  /** Stores the signed envelope held (status awaiting_approval), not queued. */
  hold(signed: SignedEnvelope, envelopeHash: string, approvalId: string): Promise<void>;
}

export interface SubmitJobInput {
  /** Validated against the configured bounds (jobRequestSchema). */
  request: JobRequest;
  caller: JobCaller;
  jobId: string;
  /** The caller's job quotas, signed into the envelope for the queue and the workers. */
  quota: JobQuota;
  /** W3C traceparent of the submitting request, signed into the envelope when present. */
  traceparent?: string;
}

export interface SubmitJobPorts {
  settings: SubmitSettings;
  now: () => number;
  /** Refuses (throws) before any policy or audit work, e.g. when the submitter's queue is full. */
  admit: () => Promise<void>;
  evaluate: (req: JobPolicyRequest) => Promise<JobPolicyDecision>;
  /** The service key. */
  signer: EnvelopeSigner;
  /** Resolves once the event is durable. */
  audit: (event: JobAuditEvent) => Promise<void>;
  enqueue: (signed: SignedEnvelope, envelopeHash: string) => Promise<void>;
  approval?: JobApprovalPorts;
}

export type SubmitOutcome =
  | {
      outcome: "queued";
      jobId: string;
      tier: Tier;
      riskScore: number | null;
      envelopeHash: string;
      signed: SignedEnvelope;
    }
  /** Held until its approval is answered; audited `job.awaiting_approval`. */
  | {
      outcome: "awaiting_approval";
      jobId: string;
      tier: Tier;
      riskScore: number | null;
      envelopeHash: string;
      signed: SignedEnvelope;
      approvalId: string;
      approver: string;
    }
  /** The request asks for network egress, which this deployment does not run. Nothing audited. */
  | { outcome: "network-unavailable" }
  /** A rule of `network.allow` that the configuration refuses (`index`). Nothing was audited. */
  | { outcome: "network-refused"; index: number; reason: string }
  /** Refused by policy; audited `job.denied`. */
  | { outcome: "denied"; decisionId: string; reason: string };

/** What a policy decision means for a job: a denial, or what it raises. */
export type PolicyVerdict =
  | { denied: true; reason: string }
  | {
      denied: false;
      minimumTier?: Tier;
      dataSensitivity?: number;
      /** The job waits for this approval (an enforced `require_approval`). */
      approval?: { approver: string; approvers: string[] };
    };

/**
 * A deny denies unless the decision is not enforced (permissive mode). An enforced
 * `require_approval` naming its approver holds the job for approval (one naming none denies).
 * `allow_with_conditions` (and an approval's other obligations) may demand a tier or a data
 * sensitivity; any other condition cannot be enforced on a sandbox job, so it denies.
 */
export function policyVerdict(d: JobPolicyDecision): PolicyVerdict {
  if (d.decision === "deny" || d.decision === "require_approval") {
    if (d.enforced === false) return { denied: false };
    if (d.decision === "deny" || d.approver === undefined)
      return { denied: true, reason: d.reason ?? `policy decided ${d.decision}` };
    const rest = conditionsVerdict((d.conditions ?? []).filter((c) => !/_approval$/.test(c.name)));
    if (rest.denied) return rest;
    return { ...rest, approval: { approver: d.approver, approvers: d.approvers ?? [d.approver] } };
  }
  if (d.decision !== "allow_with_conditions") return { denied: false };
  return conditionsVerdict(d.conditions ?? []);
}

function conditionsVerdict(
  conditions: NonNullable<JobPolicyDecision["conditions"]>,
): PolicyVerdict {
  let minimumTier: Tier | undefined;
  let dataSensitivity: number | undefined;
  let denial: string | undefined;
  for (const cond of conditions) {
    if (TIER_CONDITIONS.has(cond.name) && (cond.value === "docker" || cond.value === "gvisor")) {
      minimumTier = minimumTier ? stricterTier(minimumTier, cond.value) : cond.value;
    } else if (
      cond.name === SENSITIVITY_CONDITION &&
      typeof cond.value === "number" &&
      cond.value >= 0 &&
      cond.value <= 1
    ) {
      dataSensitivity = Math.max(dataSensitivity ?? 0, cond.value);
    } else {
      denial = `policy condition ${cond.name} cannot be enforced on a sandbox job`;
    }
  }
  if (denial !== undefined) return { denied: true, reason: denial };
  return {
    denied: false,
    ...(minimumTier ? { minimumTier } : {}),
    ...(dataSensitivity !== undefined ? { dataSensitivity } : {}),
  };
}

/** The job as a policy sees it, before the server's agent.* and request.time are added. */
export function jobPolicyContext(
  jobId: string,
  spec: JobSpec,
  base: { tier: Tier; assessment?: { score: number; level: string } },
): JsonObject {
  return {
    jobId,
    image: spec.image,
    tier: base.tier,
    riskScore: base.assessment?.score ?? null,
    riskLevel: base.assessment?.level ?? null,
    kind: spec.command ? "command" : "code",
    language: spec.language ?? null,
    timeoutMs: spec.timeoutMs,
    memoryMb: spec.limits.memoryMb,
    cpus: spec.limits.cpus,
    pids: spec.limits.pids,
    files: Object.keys(spec.files ?? {}).length,
    // docs/sandbox.md: false without network, else the rules as a policy may inspect them.
    network:
      spec.network.allow.length === 0
        ? false
        : spec.network.allow.map((r) => ({
            ...(r.domain !== undefined ? { domain: r.domain } : {}),
            ...(r.cidr !== undefined ? { cidr: r.cidr } : {}),
            ports: [...r.ports],
            protocol: r.protocol,
          })),
  };
}

const identityOf = (c: JobCaller): CallerIdentity => ({
  kid: c.keyid,
  subject: c.subject ?? "",
  role: c.role,
  groups: c.groups,
  trust: c.trust,
});

/**
 * Network check, bounded risk and tier, admission, policy, envelope, audit, queue — in that order,
 * so a refusal costs nothing after it and every accepted job is audited before it can run.
 * Port failures propagate unchanged (the caller fails closed on them).
 */
export async function submitJob(
  input: SubmitJobInput,
  ports: SubmitJobPorts,
): Promise<SubmitOutcome> {
  const { request: req, caller: who, jobId } = input;
  const { defaultTier, thresholds } = ports.settings;
  // docs/sandbox.md "Egress": configuration admits each rule before policy sees the job.
  const wantsNetwork = req.network.allow.length > 0;
  if (wantsNetwork) {
    const egress = ports.settings.egress;
    if (!egress) return { outcome: "network-unavailable" };
    for (const [index, rule] of req.network.allow.entries()) {
      const reason = ruleRefusal(rule, egress);
      if (reason !== null) return { outcome: "network-refused", index, reason };
    }
  }
  const spec = specFromRequest(req);
  // docs/governance.md: codeTrustLevel is the key's admin-set trust; a declaration only raises.
  const derived: DerivedRisk = { codeTrustLevel: who.trust, networkAccess: wantsNetwork ? 1 : 0 };
  const base = selectTier(boundedRisk(req.risk, derived), { defaultTier, thresholds });
  await ports.admit();

  const jobContext = jobPolicyContext(jobId, spec, base);
  const decision = await ports.evaluate({
    action: "execute",
    resource: "sandbox",
    // agent.* and request.time as on /v1/evaluate: one definition (shared/policy/identity).
    context: withServerAttributes(jobContext, identityOf(who), ports.now()),
  });
  const decisionId = decision.decisionId ?? uuidV7();
  let verdict = policyVerdict(decision);
  if (!verdict.denied && verdict.approval && !ports.approval)
    verdict = { denied: true, reason: decision.reason ?? "policy decided require_approval" };
  if (verdict.denied) {
    await ports.audit({
      eventType: "job.denied",
      agentId: who.keyid,
      details: {
        jobId,
        decisionId,
        decision: decision.decision,
        reason: verdict.reason,
        image: spec.image,
      },
    });
    return { outcome: "denied", decisionId, reason: verdict.reason };
  }

  const risk: RiskInput = boundedRisk(req.risk, {
    ...derived,
    ...(verdict.dataSensitivity !== undefined ? { dataSensitivity: verdict.dataSensitivity } : {}),
  });
  const { tier, assessment } = selectTier(risk, {
    defaultTier,
    thresholds,
    ...(verdict.minimumTier ? { policyMinimum: verdict.minimumTier } : {}),
  });
  const created = ports.now();
  const envelope: JobEnvelope = {
    type: "sigil.job-envelope.v1",
    jobId,
    submitter: { kid: who.keyid, subject: who.subject },
    spec,
    image: spec.image,
    tier,
    // The inputs as the server bounded them: the worker re-derives the tier from these.
    risk,
    riskScore: assessment?.score ?? null,
    riskLevel: assessment?.level ?? null,
    policyMinimumTier: verdict.minimumTier ?? null,
    policyDecisionId: decisionId,
    createdAt: new Date(created).toISOString(),
    // A held job's envelope must outlive the wait for its answer, then run as any other.
    expiresAt: new Date(
      created +
        ports.settings.envelopeTtlMs +
        (verdict.approval ? (ports.settings.approvalWaitMs ?? 0) : 0),
    ).toISOString(),
    quota: input.quota,
    // The worker continues the submitting request's trace (docs/operating.md).
    ...(input.traceparent ? { traceparent: input.traceparent } : {}),
  };
  const signed = await signEnvelope(envelope, ports.signer);
  const hash = envelopeHash(envelope);
  if (verdict.approval && ports.approval) {
    // The approval first: a crash before the hold leaves an approval that releases nothing.
    const approvalId = await ports.approval.request({
      jobId,
      caller: who,
      context: jobContext,
      decision,
      approver: verdict.approval.approver,
      approvers: verdict.approval.approvers,
      decisionId,
    });
    await ports.audit({
      eventType: "job.awaiting_approval",
      agentId: who.keyid,
      details: {
        jobId,
        approvalId,
        approver: verdict.approval.approver,
        envelopeHash: hash,
        image: spec.image,
        tier,
        riskScore: envelope.riskScore,
        risk,
        keyTrust: who.trust,
        decisionId,
        serviceKid: signed.kid,
      },
    });
    await ports.approval.hold(signed, hash, approvalId);
    return {
      outcome: "awaiting_approval",
      jobId,
      tier,
      riskScore: envelope.riskScore,
      envelopeHash: hash,
      signed,
      approvalId,
      approver: verdict.approval.approver,
    };
  }
  await ports.audit({
    eventType: "job.submitted",
    agentId: who.keyid,
    details: {
      jobId,
      envelopeHash: hash,
      image: spec.image,
      tier,
      riskScore: envelope.riskScore,
      risk,
      keyTrust: who.trust,
      ...(req.risk !== undefined ? { declaredRisk: req.risk } : {}),
      decisionId,
      serviceKid: signed.kid,
    },
  });
  await ports.enqueue(signed, hash);
  return {
    outcome: "queued",
    jobId,
    tier,
    riskScore: envelope.riskScore,
    envelopeHash: hash,
    signed,
  };
}
