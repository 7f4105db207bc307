// Jobs (docs/http-api.md "Jobs"): submit (shared/jobs/submit.ts decides; this maps its outcomes
// to responses), read, wait, server-sent events, and the worker's signed result report. Every side
// effect is injected.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ApprovalService, BoundRequest } from "../../shared/approvals";
import type { SigilConfig } from "../../shared/config";
import { uuidV7, verifyEd25519 } from "../../shared/crypto";
import { canonicalJson, sha256Hex, toBase64Url } from "../../shared/encoding";
import type {
  ClaimOutcome,
  ClaimRefusal,
  FinishOutcome,
  JobRecord,
  JobsBackend,
  StartOutcome,
} from "../../shared/jobs/backend";
import {
  type ConnectionLogEntry,
  checkEgressLog,
  connectionLogEntrySchema,
  type EgressSummary,
  egressSettings,
  MAX_DENIED_EVENTS,
  MAX_REPORTED_LOG,
} from "../../shared/jobs/egress";
import type { EnvelopeSigner } from "../../shared/jobs/envelope";
import { resolveHeldJob } from "../../shared/jobs/held";
import {
  expectationFor,
  resultHash as hashResult,
  isTerminal,
  JOB_STATUSES,
  type ResultBody,
  signedResultSchema,
  verifyResult,
} from "../../shared/jobs/result";
import { jobRequestSchema } from "../../shared/jobs/schema";
import {
  type JobCaller as Caller,
  type JobApprovalRequest,
  type JobAuditEvent,
  type JobPolicyDecision,
  type JobPolicyRequest,
  submitJob,
} from "../../shared/jobs/submit";
import { LimitExceededError } from "../../shared/limits";
import { thresholdsOf } from "../../shared/risk";
import { traceparentField } from "../../shared/tracing";
import { callerLimits, limitProblem } from "../middleware/limits";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { type AppEnv, router } from "../router";
import { serveFeed } from "../sse-feed";

export type {
  JobAuditEvent,
  JobCaller as Caller,
  JobPolicyDecision,
  JobPolicyRequest,
} from "../../shared/jobs/submit";

import type { QuarantineService } from "../../shared/quarantine";

export interface JobsRouteDeps {
  config: Pick<SigilConfig, "sandbox" | "security" | "risk" | "limits"> &
    Partial<Pick<SigilConfig, "approvals" | "network">>;
  backend: JobsBackend;
  /** The functions' service key: signs envelopes. */
  serviceSigner: EnvelopeSigner;
  /** Policy evaluation of `execute` on `sandbox`; a rejection fails the submit closed (503). */
  evaluate: (req: JobPolicyRequest, caller: Caller) => Promise<JobPolicyDecision>;
  /** Appends an audit event; resolves once durable. A rejection fails the step closed (503). */
  audit: (event: JobAuditEvent) => Promise<void>;
  /** The public key of an active `worker` key, or undefined. */
  workerKey: (kid: string) => Promise<Uint8Array | undefined>;
  verify?: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => Promise<boolean>;
  newJobId?: () => string;
  now?: () => number;
  /** How long an envelope stays runnable after submit (queue wait + retries). Default 1 h. */
  envelopeTtlMs?: number;
  /** Longest single SSE connection. Default 10 min. */
  maxStreamMs?: number;
  /**
   * The approval workflow (docs/governance.md "Approvals"): a job whose enforced decision is
   * require_approval is held until answered. Absent: such a job is denied.
   */
  approvals?: ApprovalService;
  /**
   * Quarantines (docs/incidents.md "Quarantine"): a quarantined worker's reports are refused
   * (403 `quarantined`, a security event), so its jobs finish on another worker.
   */
  quarantine?: Pick<QuarantineService, "active">;
}

/** How long a read of a held job blocks before it looks at the approval again. */
const HELD_POLL_MS = 1000;
/** A job event's id: its Redis stream id (the edge forwards Node's). */
const JOB_EVENT_ID = /^\d{1,20}-\d{1,20}$/;

/** The longest long-poll a client may ask for; the Node gateway accepts it too (edge → Node). */
export const MAX_JOB_WAIT_MS = 120_000;

const jobIdParam = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .openapi({ param: { name: "id", in: "path" } }),
});

const tierSchema = z.enum(["docker", "gvisor"]);
const statusSchema = z.enum(JOB_STATUSES);

const acceptedSchema = z.union([
  z.object({
    jobId: z.string(),
    tier: tierSchema,
    riskScore: z.number().nullable(),
    status: z.literal("queued"),
  }),
  z.object({
    jobId: z.string(),
    tier: tierSchema,
    riskScore: z.number().nullable(),
    status: z.literal("awaiting_approval"),
    /** Answered with POST /v1/approvals/{approvalId}/decision by a key of group `approver`. */
    approvalId: z.string(),
    approver: z.string(),
  }),
]);

const jobViewSchema = z
  .object({
    jobId: z.string(),
    status: statusSchema,
    tier: tierSchema,
    image: z.string(),
    riskScore: z.number().nullable(),
    attempts: z.number().int(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    reason: z.string().optional(),
    /** The approval a held job waits (or waited) for. */
    approvalId: z.string().optional(),
    result: z
      .object({
        status: statusSchema,
        exitCode: z.number().nullable(),
        signal: z.string().nullable(),
        stdout: z.string(),
        stderr: z.string(),
        truncated: z.boolean(),
        durationMs: z.number(),
        workerId: z.string(),
        resultHash: z.string(),
        signature: z.string(),
        kid: z.string(),
        /** The exact body the signature covers (RFC 8785 canonical JSON of it). */
        signed: z.record(z.string(), z.unknown()),
      })
      .optional(),
  })
  .openapi("Job");

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const startedReport = z.strictObject({
  type: z.literal("started"),
  attempt: z.number().int().min(1).max(1000),
  workerId: z.string().min(1).max(128),
  envelopeHash: hex64,
  /** sha256 (hex) of the queue lock token the worker holds for this attempt: its claim. */
  lockHash: hex64,
});
const resultReport = z.strictObject({
  type: z.literal("result"),
  attempt: z.number().int().min(1).max(1000),
  signed: signedResultSchema,
  stdout: z.string(),
  stderr: z.string(),
  /**
   * While the worker still holds the queue lock: claims the attempt with the result, for a worker
   * that refused the envelope and so never reported a start.
   */
  lockHash: hex64.optional(),
  /**
   * A job with egress: its whole connection log (docs/sandbox.md, "Egress"). It must hash to the
   * signed result's `egress.digest`; its refusals go to the audit trail as `egress.denied`.
   */
  egressLog: z.array(connectionLogEntrySchema).max(MAX_REPORTED_LOG).optional(),
});
const reportSchema = z.discriminatedUnion("type", [startedReport, resultReport]);

const reportAnswer = z.object({
  outcome: z.enum(["started", "duplicate", "finished", "stored", "recorded"]),
  /** For `started` reports: whether the worker may run the job. */
  proceed: z.boolean().optional(),
  status: statusSchema.optional(),
});

function view(r: JobRecord): z.infer<typeof jobViewSchema> {
  const out: z.infer<typeof jobViewSchema> = {
    jobId: r.jobId,
    status: r.status,
    tier: r.tier,
    image: r.image,
    riskScore: r.riskScore,
    attempts: r.attempts,
    createdAt: r.createdAt,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
  };
  if (r.reason) out.reason = r.reason;
  if (r.approvalId) out.approvalId = r.approvalId;
  if (r.result) {
    const s = r.result.result;
    out.result = {
      status: s.status,
      exitCode: s.exitCode,
      signal: s.signal,
      stdout: r.result.stdout,
      stderr: r.result.stderr,
      truncated: s.truncated,
      durationMs: s.durationMs,
      workerId: s.workerId,
      resultHash: r.result.resultHash,
      signature: r.result.signature,
      kid: r.result.kid,
      signed: { ...s },
    };
  }
  return out;
}

const unavailable = (what: string, e: unknown) =>
  new Problem(
    503,
    "unavailable",
    "Service unavailable",
    `${what} failed: ${e instanceof Error ? e.message : String(e)}`,
  );

function caller(c: Context<AppEnv>): Caller {
  return {
    keyid: c.get("keyid") ?? "",
    role: c.get("role") ?? "",
    subject: c.get("subject") ?? null,
    groups: c.get("groups") ?? [],
    trust: c.get("trust") ?? 0,
  };
}

/** Agents see their own jobs; admins and auditors see all. Others' jobs are a 404, not a 403. */
function visible(r: JobRecord, who: Caller): boolean {
  if (who.role === "admin" || who.role === "auditor") return true;
  return r.submitterKid === who.keyid || (r.subject !== null && r.subject === who.subject);
}

const getRoute = createRoute({
  method: "get",
  path: "/v1/jobs/{id}",
  tags: ["jobs"],
  summary: "A job's status and signed result",
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: { params: jobIdParam },
  responses: {
    200: { description: "job", content: { "application/json": { schema: jobViewSchema } } },
    ...problemResponses(400, 401, 403, 404, 503),
  },
});

const waitRoute = createRoute({
  method: "get",
  path: "/v1/jobs/{id}/wait",
  tags: ["jobs"],
  summary: "Long-poll until the job is finished (or timeoutMs passes)",
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: {
    params: jobIdParam,
    query: z.object({
      timeoutMs: z.coerce.number().int().min(0).max(MAX_JOB_WAIT_MS).default(30_000),
    }),
  },
  responses: {
    200: { description: "job", content: { "application/json": { schema: jobViewSchema } } },
    ...problemResponses(400, 401, 403, 404, 503),
  },
});

const eventsRoute = createRoute({
  method: "get",
  path: "/v1/jobs/{id}/events",
  tags: ["jobs"],
  summary: "Server-sent events: queued, started, output, finished",
  description:
    "From the job's first event, or after `Last-Event-ID` (covered by the signature, else 401; a malformed one is 400). Ends after `finished`, after a few minutes (reconnect with Last-Event-ID), or with event `end` (a problem) once the key is revoked, quarantined or no longer of its role.",
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: { params: jobIdParam },
  responses: {
    200: {
      description: "text/event-stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...problemResponses(400, 401, 403, 404, 503),
  },
});

const resultRoute = createRoute({
  method: "post",
  path: "/v1/jobs/{id}/result",
  tags: ["jobs"],
  summary: "A worker reports a job start or its signed result",
  middleware: [requireRole("worker")] as const,
  request: {
    params: jobIdParam,
    body: { required: true, content: { "application/json": { schema: reportSchema } } },
  },
  responses: {
    200: { description: "recorded", content: { "application/json": { schema: reportAnswer } } },
    ...problemResponses(400, 401, 403, 404, 409, 503),
  },
});

const cancelRoute = createRoute({
  method: "post",
  path: "/v1/jobs/{id}/cancel",
  tags: ["jobs"],
  summary:
    "Cancel a job: a queued or held one ends `killed` now, a running one is killed on its worker",
  middleware: [requireRole("agent", "admin")] as const,
  request: {
    params: jobIdParam,
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z.strictObject({ reason: z.string().max(1024).optional() }),
        },
      },
    },
  },
  responses: {
    200: {
      description:
        "`cancelled` (it ended `killed` now), `killing` (its worker was told; the job ends with the worker's signed `killed` result) or `finished` (it had already ended; nothing changed)",
      content: {
        "application/json": {
          schema: z.object({
            outcome: z.enum(["cancelled", "killing", "finished"]),
            job: jobViewSchema,
          }),
        },
      },
    },
    ...problemResponses(400, 401, 403, 404, 503),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/jobs",
  tags: ["jobs"],
  summary: "Jobs, newest first: an agent's own (its subject's), or all for admins and auditors",
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: {
    query: z.object({
      status: statusSchema.optional(),
      limit: z.coerce.number().int().min(1).max(100).default(20),
      cursor: z.string().max(200).optional(),
    }),
  },
  responses: {
    200: {
      description: "one page; pass `cursor` back for the next (absent on the last page)",
      content: {
        "application/json": {
          schema: z.object({ jobs: z.array(jobViewSchema), cursor: z.string().optional() }),
        },
      },
    },
    ...problemResponses(400, 401, 403, 503),
  },
});

function submitRoute(schema: ReturnType<typeof jobRequestSchema>) {
  return createRoute({
    method: "post",
    path: "/v1/jobs",
    tags: ["jobs"],
    summary: "Submit a job to run in a sandbox",
    middleware: [requireRole("agent")] as const,
    request: {
      body: {
        required: true,
        content: { "application/json": { schema } },
      },
    },
    responses: {
      202: {
        description:
          "queued; or `awaiting_approval` with the `approvalId` its policy requires (the signed envelope is frozen and queued once approved; a deny or an expiry ends the job `rejected`)",
        content: { "application/json": { schema: acceptedSchema } },
      },
      ...problemResponses(400, 401, 403, 429, 503),
    },
  });
}

export function jobsRoutes(deps: JobsRouteDeps) {
  const cfg = deps.config;
  const requestSchema = jobRequestSchema(cfg.sandbox);
  const thresholds = thresholdsOf(cfg.risk);
  const defaultTier = cfg.security.default_sandbox_tier;
  const verify = deps.verify ?? verifyEd25519;
  const now = deps.now ?? Date.now;
  const newJobId = deps.newJobId ?? uuidV7;
  const ttl = deps.envelopeTtlMs ?? 3600_000;
  // docs/sandbox.md "Egress": parsed once; absent or off, every job asking for network is refused.
  const egress = cfg.network?.egress
    ? egressSettings(cfg.network.allow_cidrs, cfg.network.deny_cidrs)
    : undefined;
  const maxStreamMs = deps.maxStreamMs ?? 600_000;

  async function audit(e: JobAuditEvent): Promise<void> {
    try {
      await deps.audit(e);
    } catch (err) {
      throw unavailable("audit append", err);
    }
  }

  /**
   * docs/sandbox.md "Egress": each refused connection (from a log that hashes to the signed
   * digest) as `egress.denied`, then the job's signed summary as `egress.summary`.
   */
  async function auditEgress(
    workerKid: string,
    jobId: string,
    summary: EgressSummary,
    log: readonly ConnectionLogEntry[] | undefined,
  ): Promise<void> {
    const denied = (log ?? []).filter((e) => !e.allowed);
    for (const e of denied.slice(0, MAX_DENIED_EVENTS))
      await audit({
        eventType: "egress.denied",
        agentId: workerKid,
        details: {
          jobId,
          kind: e.kind,
          host: e.host,
          port: e.port,
          ...(e.address ? { address: e.address } : {}),
          reason: e.reason ?? "refused",
          at: e.at,
        },
      });
    await audit({
      eventType: "egress.summary",
      agentId: workerKid,
      details: {
        jobId,
        ...summary,
        logReported: log !== undefined,
        deniedAudited: Math.min(denied.length, MAX_DENIED_EVENTS),
      },
    });
  }

  /** 429 when the caller's submitter already has `cap` unfinished jobs. */
  async function admit(c: Context<AppEnv>, who: Caller, cap: number): Promise<void> {
    if (!deps.backend.pending) return;
    let n: number;
    try {
      n = await deps.backend.pending({ kid: who.keyid, subject: who.subject });
    } catch (e) {
      throw unavailable("job store", e);
    }
    if (n >= cap) {
      const full = new LimitExceededError(
        "queued_jobs",
        2000,
        `${n} jobs are unfinished (cap ${cap})`,
      );
      throw await limitProblem(c, full);
    }
  }

  async function load(id: string, who: Caller): Promise<JobRecord> {
    let r: JobRecord | null;
    try {
      r = await deps.backend.get(id);
    } catch (e) {
      throw unavailable("job store", e);
    }
    if (!r || !visible(r, who))
      throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
    if (r.status === "awaiting_approval") return (await resolveHeld(id)) ?? r;
    return r;
  }

  /**
   * A held job read: its approval may have been answered or expired with nobody acting on it yet
   * (a process died, or no sweep runs here): act now. The job as it is afterwards.
   */
  async function resolveHeld(id: string): Promise<JobRecord | null> {
    const approvals = deps.approvals;
    if (!approvals) return null;
    try {
      const out = await resolveHeldJob(id, { backend: deps.backend, approvals, audit, now });
      return out === "waiting" ? null : await deps.backend.get(id);
    } catch (e) {
      if (e instanceof Problem) throw e;
      throw unavailable("held job resolution", e);
    }
  }

  /** Opens the approval a held job waits for, bound to the request and to the job. */
  async function requestApproval(req: JobApprovalRequest): Promise<string> {
    const approvals = deps.approvals;
    if (!approvals) throw unavailable("approval", new Error("no approval workflow"));
    const bound: BoundRequest = {
      kid: req.caller.keyid,
      subject: req.caller.subject ?? "",
      action: "execute",
      resource: "sandbox",
      tags: [],
      contextSha256: sha256Hex(canonicalJson(req.context)),
      policySetVersion: req.decision.policySetVersion ?? "",
      approver: req.approver,
      approvers: req.approvers,
      jobId: req.jobId,
    };
    try {
      const { record } = await approvals.request(bound, {
        decisionId: req.decisionId,
        policyReason: req.decision.reason?.slice(0, 4096) ?? null,
      });
      return record.id;
    } catch (e) {
      throw unavailable("approval store", e);
    }
  }

  /** A `security.event` (functions/audit-sink.ts shape): input for incident response. */
  function securityAudit(
    who: Caller,
    category: string,
    details: Record<string, unknown> & { description: string },
  ): Promise<void> {
    const { description, ...rest } = details;
    return audit({
      eventType: "security.event",
      agentId: who.keyid,
      details: { category, severity: "high", description, workerKid: who.keyid, ...rest },
    });
  }

  /** A worker key that did not claim the attempt: a security event, then 403. */
  async function refuse(
    who: Caller,
    category: "job.claim_refused" | "job.result_refused" | "worker.quarantined_report",
    jobId: string,
    attempt: number,
    reason: ClaimRefusal | "signed-by-other",
    record: JobRecord | null,
    extra: Record<string, unknown> = {},
  ): Promise<never> {
    const claimedBy = record?.claims[String(attempt)] ?? null;
    const description =
      reason === "signed-by-other"
        ? "a worker reports only results it signed itself"
        : reason === "no-lock"
          ? `worker key ${who.keyid} does not hold the queue's lock for attempt ${attempt} of job ${jobId}`
          : `attempt ${attempt} of job ${jobId} was not claimed by worker key ${who.keyid}`;
    await securityAudit(who, category, {
      jobId,
      attempt,
      reason,
      claimedBy,
      description,
      ...extra,
    });
    throw new Problem(403, "forbidden", "Forbidden", description);
  }

  /** Claims an attempt for the calling worker key; a refusal is a security event and a 403. */
  async function claimAttempt(
    jobId: string,
    who: Caller,
    attempt: number,
    lockHash: string,
    step: "start" | "result",
  ): Promise<Exclude<ClaimOutcome, { outcome: "missing" | "refused" }>> {
    let out: ClaimOutcome;
    try {
      out = await deps.backend.claim(jobId, { attempt, workerKid: who.keyid, lockHash });
    } catch (e) {
      throw unavailable("job store", e);
    }
    if (out.outcome === "missing")
      throw new Problem(404, "not-found", "Not found", `job ${jobId} was not found`);
    if (out.outcome === "refused")
      return refuse(
        who,
        step === "start" ? "job.claim_refused" : "job.result_refused",
        jobId,
        attempt,
        out.reason,
        out.record,
      );
    return out;
  }

  return router()
    .openapi(submitRoute(requestSchema), async (c) => {
      const who = caller(c);
      const { queuedJobs, runningJobs } = callerLimits(c, cfg.limits);
      const out = await submitJob(
        {
          request: c.req.valid("json"),
          caller: who,
          jobId: newJobId(),
          quota: { queuedJobs, runningJobs },
          ...traceparentField(),
        },
        {
          settings: {
            defaultTier,
            thresholds,
            envelopeTtlMs: ttl,
            approvalWaitMs: (cfg.approvals?.timeout_s ?? 0) * 1000,
            ...(egress ? { egress } : {}),
          },
          now,
          // A full queue is refused before any policy or audit work (the backend enforces it
          // again).
          admit: () => admit(c, who, queuedJobs),
          evaluate: (req) =>
            deps.evaluate(req, who).catch((e: unknown) => {
              throw unavailable("policy evaluation", e);
            }),
          signer: deps.serviceSigner,
          audit,
          enqueue: async (signed, hash) => {
            try {
              await deps.backend.submit(signed, hash);
            } catch (e) {
              throw (await limitProblem(c, e)) ?? unavailable("enqueue", e);
            }
          },
          ...(deps.approvals
            ? {
                approval: {
                  request: requestApproval,
                  hold: async (signed, hash, approvalId) => {
                    try {
                      await deps.backend.hold(signed, hash, approvalId);
                    } catch (e) {
                      throw (await limitProblem(c, e)) ?? unavailable("job store", e);
                    }
                  },
                },
              }
            : {}),
        },
      );
      if (out.outcome === "network-unavailable")
        throw new Problem(
          400,
          "validation",
          "Network access is not available",
          "sandbox egress is off in this deployment ([network] egress, docs/sandbox.md), so jobs asking for network are refused",
          [
            {
              path: "network.allow",
              message: "must be empty: sandbox network egress is not enabled",
            },
          ],
        );
      if (out.outcome === "network-refused")
        throw new Problem(
          400,
          "validation",
          "Network rule refused",
          `network.allow[${out.index}]: ${out.reason}`,
          [{ path: `network.allow.${out.index}`, message: out.reason }],
        );
      if (out.outcome === "denied")
        throw new Problem(403, "policy-denied", "Denied by policy", out.reason, undefined, {
          decisionId: out.decisionId,
        });
      if (out.outcome === "awaiting_approval")
        return c.json(
          {
            jobId: out.jobId,
            tier: out.tier,
            riskScore: out.riskScore,
            status: "awaiting_approval" as const,
            approvalId: out.approvalId,
            approver: out.approver,
          },
          202,
        );
      return c.json(
        { jobId: out.jobId, tier: out.tier, riskScore: out.riskScore, status: "queued" as const },
        202,
      );
    })
    .openapi(listRoute, async (c) => {
      const who = caller(c);
      const { status, limit, cursor } = c.req.valid("query");
      const list = deps.backend.list?.bind(deps.backend);
      if (!list) throw unavailable("job listing", new Error("not supported by this job store"));
      const scope =
        who.role === "admin" || who.role === "auditor"
          ? ("all" as const)
          : who.subject !== null
            ? { subject: who.subject }
            : { kid: who.keyid };
      let page: Awaited<ReturnType<typeof list>>;
      try {
        page = await list({
          scope,
          limit,
          ...(status ? { status } : {}),
          ...(cursor ? { cursor } : {}),
        });
      } catch (e) {
        if (e instanceof RangeError)
          throw new Problem(
            400,
            "validation",
            "Invalid cursor",
            "cursor is not one this API gave",
            [{ path: "cursor", message: "invalid cursor" }],
          );
        throw unavailable("job store", e);
      }
      return c.json(
        {
          jobs: page.jobs.filter((r) => visible(r, who)).map(view),
          ...(page.cursor ? { cursor: page.cursor } : {}),
        },
        200,
      );
    })
    .openapi(cancelRoute, async (c) => {
      const { id } = c.req.valid("param");
      const who = caller(c);
      const body = (c.req.valid("json") as { reason?: string } | undefined) ?? {};
      const cancel = deps.backend.cancel?.bind(deps.backend);
      if (!cancel) throw unavailable("job cancel", new Error("not supported by this job store"));
      // The submitter (its key or subject) or an admin; anyone else's job is a 404.
      const before = await load(id, who);
      const by = who.subject ?? who.keyid;
      const reason = `cancelled by ${by}${body.reason ? `: ${body.reason}` : ""}`.slice(0, 2048);
      if (!isTerminal(before.status))
        // Audited before the state change: a retried cancel may audit twice, never zero times.
        await audit({
          eventType: "job.cancelled",
          agentId: who.keyid,
          details: { jobId: id, status: before.status, by, reason: body.reason ?? null },
        });
      let out: Awaited<ReturnType<typeof cancel>>;
      try {
        out = await cancel(id, reason);
      } catch (e) {
        throw unavailable("job store", e);
      }
      if (out.outcome === "missing")
        throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
      return c.json({ outcome: out.outcome, job: view(out.record) }, 200);
    })
    .openapi(getRoute, async (c) => {
      const r = await load(c.req.valid("param").id, caller(c));
      return c.json(view(r), 200);
    })
    .openapi(waitRoute, async (c) => {
      const { id } = c.req.valid("param");
      const { timeoutMs } = c.req.valid("query");
      let r: JobRecord | null = await load(id, caller(c));
      const deadline = Date.now() + timeoutMs;
      try {
        // Held: wait in short slices, looking at the approval between them (an expiry nobody
        // acts on elsewhere ends the job here within a slice).
        while (r?.status === "awaiting_approval" && !c.req.raw.signal.aborted) {
          const left = deadline - Date.now();
          if (left <= 0) break;
          r = await deps.backend.wait(id, Math.min(left, HELD_POLL_MS), c.req.raw.signal);
          if (r?.status === "awaiting_approval") r = (await resolveHeld(id)) ?? r;
        }
        const left = deadline - Date.now();
        if (r && r.status !== "awaiting_approval" && left > 0)
          r = await deps.backend.wait(id, left, c.req.raw.signal);
      } catch (e) {
        if (e instanceof Problem) throw e;
        throw unavailable("job store", e);
      }
      if (!r) throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
      return c.json(view(r), 200);
    })
    .openapi(eventsRoute, async (c) => {
      const { id } = c.req.valid("param");
      let held = (await load(id, caller(c))).status === "awaiting_approval";
      return serveFeed(c, {
        lastEventId: JOB_EVENT_ID,
        start: async () => undefined,
        maxStreamMs,
        read: async (after, waitMs, signal) => {
          const events = await deps.backend.events(
            id,
            after,
            held ? Math.min(HELD_POLL_MS, waitMs) : waitMs,
            signal,
          );
          // Held: look at the approval (its answer or expiry shows up as the next events).
          if (events.length === 0 && held) held = (await resolveHeld(id))?.status === undefined;
          if (events.some((e) => e.type === "queued")) held = false;
          return {
            events: events.map((e) => ({ id: e.id, event: e.type, data: e.data })),
            after: events.at(-1)?.id ?? after,
          };
        },
        isLast: (e) => e.event === "finished",
      });
    })
    .openapi(resultRoute, async (c) => {
      const { id } = c.req.valid("param");
      const report = c.req.valid("json");
      const who = caller(c);
      // A quarantined worker (by the id it reports under, or by its key id: incident response
      // names a worker by the key that signed the evidence) gets nothing recorded.
      const workerId = report.type === "started" ? report.workerId : report.signed.result.workerId;
      const isolated = await Promise.all(
        [workerId, who.keyid].map((id) =>
          deps.quarantine?.active({ kind: "worker", workerId: id }),
        ),
      )
        .then(([byId, byKid]) => byId ?? byKid)
        .catch((e: unknown) => {
          throw unavailable("quarantine store", e);
        });
      if (isolated) {
        // Not `job.result_refused`: a report from a worker already isolated is no new evidence of
        // a forged result (it must not revoke the key of a worker an admin paused).
        await securityAudit(who, "worker.quarantined_report", {
          jobId: id,
          attempt: report.attempt,
          reason: "quarantined",
          workerId,
          quarantineId: isolated.id,
          description: `worker ${workerId} is quarantined (${isolated.id}); its report was refused`,
        });
        throw new Problem(403, "quarantined", "Quarantined", `worker ${workerId} is quarantined`);
      }
      let record: JobRecord | null;
      try {
        record = await deps.backend.get(id);
      } catch (e) {
        throw unavailable("job store", e);
      }

      if (report.type === "started") {
        if (!record) throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
        if (record.envelopeHash !== report.envelopeHash)
          throw new Problem(
            409,
            "conflict",
            "Envelope mismatch",
            "the started job is not the envelope the service signed",
          );
        if (record.status !== "queued" && record.status !== "running")
          return c.json(
            { outcome: "finished" as const, proceed: false, status: record.status },
            200,
          );
        // The attempt becomes this key's only if it holds the queue's lock for it.
        const claimed = await claimAttempt(id, who, report.attempt, report.lockHash, "start");
        if (claimed.outcome === "finished")
          return c.json(
            { outcome: "finished" as const, proceed: false, status: claimed.record.status },
            200,
          );
        if (report.attempt <= record.attempts)
          return c.json(
            { outcome: "duplicate" as const, proceed: true, status: record.status },
            200,
          );
        // Audit before the state change: a retried report may audit twice, never zero times.
        await audit({
          eventType: "job.started",
          agentId: who.keyid,
          details: {
            jobId: id,
            attempt: report.attempt,
            retry: report.attempt > 1,
            workerId: report.workerId,
            envelopeHash: report.envelopeHash,
          },
        });
        let out: StartOutcome;
        try {
          out = await deps.backend.markStarted(id, {
            attempt: report.attempt,
            workerId: report.workerId,
            workerKid: who.keyid,
            at: new Date(now()).toISOString(),
          });
        } catch (e) {
          throw unavailable("job store", e);
        }
        if (out.outcome === "missing")
          throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
        if (out.outcome === "refused")
          return refuse(who, "job.claim_refused", id, report.attempt, out.reason, out.record);
        return c.json(
          { outcome: out.outcome, proceed: out.outcome !== "finished", status: out.record.status },
          200,
        );
      }

      // A result: it must be signed by the very worker key that authenticated this request.
      const signed = report.signed;
      if (signed.kid !== who.keyid)
        return refuse(who, "job.result_refused", id, report.attempt, "signed-by-other", record, {
          signedBy: signed.kid,
        });
      let publicKey: Uint8Array | undefined;
      try {
        publicKey = await deps.workerKey(signed.kid);
      } catch (e) {
        throw unavailable("key registry", e);
      }
      if (!publicKey)
        throw new Problem(403, "forbidden", "Forbidden", `worker key ${signed.kid} is not active`);
      // The very result already stored, re-sent by the key that signed it (its acknowledgement
      // was lost, possibly under a later attempt): nothing changes, so nothing to refuse.
      if (
        record?.result &&
        record.result.kid === who.keyid &&
        record.result.signature === signed.signature &&
        record.result.resultHash === signed.resultHash &&
        // the body itself, not only the hash the report states
        hashResult(signed.result) === record.result.resultHash
      )
        return c.json({ outcome: "duplicate" as const, status: record.status }, 200);
      // docs/http-api.md: accepted only from the worker key that claimed the job (this attempt).
      if (record && record.claims[String(report.attempt)] !== who.keyid) {
        const claimed = report.lockHash
          ? await claimAttempt(id, who, report.attempt, report.lockHash, "result")
          : undefined;
        if (claimed?.outcome !== "claimed" && claimed?.outcome !== "duplicate")
          return refuse(
            who,
            "job.result_refused",
            id,
            report.attempt,
            record.claims[String(report.attempt)] ? "claimed-by-other" : "not-claimant",
            record,
          );
      }
      const verdict = await verifyResult(
        signed,
        publicKey,
        verify,
        expectationFor(id, record, { stdout: report.stdout, stderr: report.stderr }),
      );
      if (!verdict.ok) {
        await securityAudit(who, "job.result_refused", {
          jobId: id,
          attempt: report.attempt,
          reason: verdict.reason,
          detail: verdict.detail,
          description: `a signed job result was refused: ${verdict.reason}`,
        });
        if (
          verdict.reason === "malformed" ||
          verdict.reason === "bad-signature" ||
          verdict.reason === "output-mismatch"
        )
          throw new Problem(400, "validation", "Invalid result", verdict.detail, [
            { path: "signed", message: `${verdict.reason}: ${verdict.detail}` },
          ]);
        throw new Problem(409, "conflict", "Result does not match the job", verdict.detail);
      }
      const result: ResultBody = verdict.result;
      const egressProblem = checkEgressLog(result, report.egressLog);
      if (egressProblem)
        throw new Problem(400, "validation", "Invalid result", egressProblem, [
          { path: "egressLog", message: egressProblem },
        ]);
      const details = {
        jobId: id,
        status: result.status,
        reason: result.reason,
        exitCode: result.exitCode,
        resultHash: verdict.resultHash,
        envelopeHash: result.envelopeHash,
        workerId: result.workerId,
        attempt: report.attempt,
      };
      if (!record) {
        // Only a rejection may name a job the service never created: a forged envelope that a
        // worker refused. Nothing to store; the audit trail is its record.
        if (result.status !== "rejected")
          throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
        await audit({
          eventType: "job.rejected",
          agentId: who.keyid,
          details: { ...details, unknownJob: true },
        });
        return c.json({ outcome: "recorded" as const, status: "rejected" as const }, 200);
      }
      if (record.result) {
        if (record.result.resultHash === verdict.resultHash)
          return c.json({ outcome: "duplicate" as const, status: record.status }, 200);
        // A second, different result for one job: a sign a worker key is compromised, audited high.
        await securityAudit(who, "job.result_conflict", {
          ...details,
          description: `job ${id} already has a different result`,
        });
        throw new Problem(
          409,
          "conflict",
          "Job already finished",
          `job ${id} already has a different result`,
        );
      }
      if (result.egress) await auditEgress(who.keyid, id, result.egress, report.egressLog);
      await audit({
        eventType: result.status === "rejected" ? "job.rejected" : "job.completed",
        agentId: who.keyid,
        details,
      });
      let out: FinishOutcome;
      try {
        out = await deps.backend.finish(
          id,
          { ...signed, stdout: report.stdout, stderr: report.stderr },
          {
            attempt: report.attempt,
            workerKid: who.keyid,
            workerPublicKey: toBase64Url(publicKey),
          },
        );
      } catch (e) {
        throw unavailable("job store", e);
      }
      if (out.outcome === "missing")
        throw new Problem(404, "not-found", "Not found", `job ${id} was not found`);
      if (out.outcome === "refused")
        return refuse(who, "job.result_refused", id, report.attempt, out.reason, out.record);
      if (out.outcome === "conflict")
        throw new Problem(
          409,
          "conflict",
          "Job already finished",
          `job ${id} already has a different result`,
        );
      return c.json({ outcome: out.outcome, status: out.record.status }, 200);
    });
}
