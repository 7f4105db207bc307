// Approvals (docs/governance.md "Approvals", docs/http-api.md "Approvals"): list, read and answer
// approvals; and the step of POST /v1/evaluate that opens an approval for a `require_approval`
// decision or redeems an approved one, once, for exactly the bound request.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  type ApprovalEvent,
  ApprovalIdSchema,
  type ApprovalRecord,
  ApprovalService,
  ApprovalStatusSchema,
  type ApprovalStore,
  type BoundRequest,
  statusAt,
} from "../../shared/approvals";
import type { SigilConfig } from "../../shared/config";
import { type Signer, uuidV7 } from "../../shared/crypto";
import { canonicalJson, clip, sha256Hex } from "../../shared/encoding";
import type { JobsBackend } from "../../shared/jobs/backend";
import { resolveHeldJob } from "../../shared/jobs/held";
import type { Logger } from "../../shared/log";
import type { Decision, EvaluationRequest } from "../../shared/policy";
import { ApprovalWebhooks } from "../approval-webhooks";
import type { AuditFn } from "../audit-sink";
import { identityOf } from "../middleware/auth";
import { inBackground } from "../middleware/limits";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { type AppEnv, router } from "../router";
import { CHANGE_CURSOR, pollChanges, serveFeed } from "../sse-feed";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null | undefined) => (ms == null ? null : iso(ms));

const actor = z.object({ kid: z.string(), subject: z.string() });
export const ApprovalViewSchema = z
  .object({
    id: z.string(),
    status: ApprovalStatusSchema,
    approver: z.string(),
    approvers: z.array(z.string()),
    request: z.object({
      kid: z.string(),
      subject: z.string(),
      action: z.string(),
      resource: z.string().nullable(),
      tags: z.array(z.string()),
      contextSha256: z.string(),
      policySetVersion: z.string(),
      /** The held job this approval releases (POST /v1/jobs), if any. */
      jobId: z.string().optional(),
    }),
    decisionId: z.string().nullable(),
    policyReason: z.string().nullable(),
    createdAt: z.string(),
    expiresAt: z.string(),
    decision: z
      .object({
        decision: z.enum(["approve", "deny"]),
        by: actor,
        at: z.string(),
        reason: z.string(),
        redeemBy: z.string(),
      })
      .nullable(),
    expiredAt: z.string().nullable(),
    redeemedAt: z.string().nullable(),
  })
  .openapi("Approval");
export type ApprovalView = z.infer<typeof ApprovalViewSchema>;

/** The API's view: the status at `now` (an expiry due but not yet written is shown as expired). */
export function approvalView(r: ApprovalRecord, now: number): ApprovalView {
  const { approver, approvers, ...request } = r.request;
  return {
    id: r.id,
    status: statusAt(r, now),
    approver,
    approvers,
    request,
    decisionId: r.decisionId,
    policyReason: r.policyReason,
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    decision: r.decision
      ? {
          decision: r.decision.decision,
          by: r.decision.by,
          at: iso(r.decision.at),
          reason: r.decision.reason,
          redeemBy: iso(r.decision.redeemBy),
        }
      : null,
    expiredAt: isoOrNull(r.expiredAt),
    redeemedAt: isoOrNull(r.redeemed?.at),
  };
}

const idParam = z.object({ id: ApprovalIdSchema });
// Well-formed Unicode is checked for every body by the JSON guard; the bound keeps it small.
const DecisionBodySchema = z
  .object({
    decision: z.enum(["approve", "deny"]),
    reason: z.string().max(4096).default(""),
  })
  .strict();

const listRoute = createRoute({
  method: "get",
  path: "/v1/approvals",
  tags: ["approvals"],
  summary:
    "Approvals newest first: an approver sees its groups', a requester its own, admins and auditors all",
  middleware: [requireRole("admin", "auditor", "agent")] as const,
  request: {
    query: z.object({
      status: ApprovalStatusSchema.optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
      before: ApprovalIdSchema.optional(),
    }),
  },
  responses: {
    200: {
      description:
        "a page; `next` is the `before` of the next page (a page may hold fewer than `limit` when some are not visible or not of the status asked for)",
      ...json(z.object({ approvals: z.array(ApprovalViewSchema), next: z.string().nullable() })),
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const eventsRoute = createRoute({
  method: "get",
  path: "/v1/approvals/events",
  tags: ["approvals"],
  summary:
    "Server-sent events for consoles: event `approval` with the approval as it is now, for every change the caller may see",
  description:
    "Starts at the newest change, or after `Last-Event-ID` (each event's id, covered by the signature, else 401; a malformed one is 400). Ends after a few minutes (reconnect with Last-Event-ID), or with event `end` (a problem) once the key is revoked, quarantined or no longer of its role. An expiry appears once something has read the expired approval.",
  middleware: [requireRole("admin", "auditor", "agent")] as const,
  responses: {
    200: {
      description: "text/event-stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const getRoute = createRoute({
  method: "get",
  path: "/v1/approvals/{id}",
  tags: ["approvals"],
  summary: "One approval (its requester, its approvers, admins and auditors)",
  middleware: [requireRole("admin", "auditor", "agent")] as const,
  request: { params: idParam },
  responses: {
    200: { description: "the approval", ...json(z.object({ approval: ApprovalViewSchema })) },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});
const decideRoute = createRoute({
  method: "post",
  path: "/v1/approvals/{id}/decision",
  tags: ["approvals"],
  summary: "Answer an approval: a key holding the approver group, never the requester's subject",
  description:
    "403 forbidden when the key lacks the approver group, 403 separation-of-duties when its subject requested the approval, 409 conflict when it is already answered or expired (of two answers at once exactly one lands).",
  middleware: [requireRole("admin", "agent")] as const,
  request: { params: idParam, body: { required: true, ...json(DecisionBodySchema) } },
  responses: {
    200: { description: "answered", ...json(z.object({ approval: ApprovalViewSchema })) },
    ...problemResponses(400, 401, 403, 404, 409, 429, 503),
  },
});

export interface ApprovalRouteDeps {
  approvals: ApprovalService;
  audit: AuditFn;
  now: () => number;
  keepDelivering: (c: Context<AppEnv>) => void;
  /** Called once an answer landed (a held job is released or rejected right away). */
  onDecided?: (r: ApprovalRecord) => Promise<void>;
  /** Server-sent events: how often the change feed is read, and how long a stream lasts. */
  pollMs?: number;
  maxStreamMs?: number;
}

/** A store that cannot be reached fails the request (503), never decides it. */
function unavailable(e: unknown): never {
  if (e instanceof Problem) throw e;
  throw new Problem(503, "unavailable", "Approval store unavailable", (e as Error).message);
}

export interface ApprovalsDeps {
  store: ApprovalStore;
  config: SigilConfig;
  audit: AuditFn;
  now: () => number;
  /** Signs webhook deliveries (the service key). */
  signer: Signer;
  log: Logger;
  /** Jobs held for approval (POST /v1/jobs): released or rejected as soon as answered. */
  heldJobs?: JobsBackend;
}

/**
 * Approvals for one app: the workflow over `store` (each transition it wins is audited and
 * published to the webhooks), the evaluate step, and the routes.
 */
export function createApprovals(deps: ApprovalsDeps) {
  const { config, audit, now } = deps;
  const urls = config.approvals.webhooks;
  const webhooks =
    urls.length > 0
      ? new ApprovalWebhooks({
          urls,
          signer: deps.signer,
          log: deps.log,
          attempts: config.approvals.webhook_attempts,
          queueSize: config.approvals.webhook_queue,
          onGiveUp: async (url, body, last) => {
            await audit({
              eventType: "approval.webhook_failed",
              agentId: "system",
              details: { url, eventId: body.id, type: body.type, lastError: last },
            });
          },
        })
      : undefined;
  const service = new ApprovalService({
    store: deps.store,
    times: {
      timeoutMs: config.approvals.timeout_s * 1000,
      retentionMs: config.approvals.retention_s * 1000,
    },
    newId: uuidV7,
    now,
    onEvent: async (e) => {
      const { type, record } = e;
      await audit(approvalAuditEvent(e));
      webhooks?.publish({ type, approval: approvalView(record, now()) });
    },
  });
  // On the edge, deliveries run on after the response only while a request keeps them alive.
  const keepDelivering = (c: Context<AppEnv>) => {
    if (webhooks) inBackground(c, webhooks.idle());
  };
  return {
    service,
    webhooks,
    step: evaluateApprovalStep(service, audit, keepDelivering),
    routes: approvalRoutes({
      approvals: service,
      audit,
      now,
      keepDelivering,
      ...(deps.heldJobs ? { onDecided: releaseHeld(deps.heldJobs) } : {}),
    }),
  };

  function releaseHeld(backend: JobsBackend) {
    return async (r: ApprovalRecord): Promise<void> => {
      const jobId = r.request.jobId;
      if (jobId === undefined) return;
      try {
        await resolveHeldJob(jobId, {
          backend,
          approvals: service,
          now,
          audit: async (e) => {
            await audit({
              eventType: e.eventType,
              agentId: e.agentId ?? "system",
              details: e.details,
            });
          },
        });
      } catch (e) {
        // The answer is stored; a read of the job or the sweep (docs/governance.md) acts on it.
        deps.log.warn("held job not resolved after its approval's answer", {
          jobId,
          err: (e as Error).message,
        });
      }
    };
  }
}

/** The audit event of an approval transition (whichever process won it). */
export function approvalAuditEvent({ type, record }: ApprovalEvent): {
  eventType: string;
  agentId: string;
  details: Record<string, unknown>;
} {
  return {
    eventType: type,
    agentId:
      type === "approval.approved" || type === "approval.denied"
        ? (record.decision?.by.subject ?? "unknown")
        : record.request.subject,
    details: approvalDetails(record),
  };
}

function approvalDetails(r: ApprovalRecord): Record<string, unknown> {
  return {
    approvalId: r.id,
    status: r.status,
    approver: r.request.approver,
    approvers: r.request.approvers,
    requester: { kid: r.request.kid, subject: r.request.subject },
    action: r.request.action,
    resource: r.request.resource,
    tags: r.request.tags,
    contextSha256: r.request.contextSha256,
    policySetVersion: r.request.policySetVersion,
    decisionId: r.decisionId,
    expiresAt: r.expiresAt,
    ...(r.decision
      ? {
          decision: r.decision.decision,
          by: r.decision.by,
          reason: r.decision.reason,
          redeemBy: r.decision.redeemBy,
        }
      : {}),
    ...(r.redeemed ? { redeemedAt: r.redeemed.at, redeemDecisionId: r.redeemed.decisionId } : {}),
    ...(r.request.jobId !== undefined ? { jobId: r.request.jobId } : {}),
  };
}

/** Who may see an approval: admins and auditors, its requester's subject, its approver groups. */
function visibleTo(c: Context<AppEnv>): (r: ApprovalRecord) => boolean {
  const who = identityOf(c);
  if (who.role === "admin" || who.role === "auditor") return () => true;
  return (r) =>
    r.request.subject === who.subject || r.request.approvers.some((g) => who.groups.includes(g));
}

export function approvalRoutes({
  approvals,
  audit,
  now,
  keepDelivering,
  onDecided,
  pollMs = 500,
  maxStreamMs = 300_000,
}: ApprovalRouteDeps) {
  const get = async (c: Context<AppEnv>, id: string): Promise<ApprovalRecord> => {
    const r = await approvals.get(id).catch(unavailable);
    // Reading may write down an expiry, which is published.
    keepDelivering(c);
    // Not visible reads as unknown: an id says nothing to whoever may not see it.
    if (!r || !visibleTo(c)(r))
      throw new Problem(404, "not-found", "Not found", `no approval ${id}`);
    return r;
  };
  return (
    router()
      .openapi(listRoute, async (c) => {
        const q = c.req.valid("query");
        const page = await approvals
          .list({
            limit: q.limit ?? 100,
            ...(q.before !== undefined ? { before: q.before } : {}),
            ...(q.status !== undefined ? { status: q.status } : {}),
            visible: visibleTo(c),
          })
          .catch(unavailable);
        keepDelivering(c);
        const at = now();
        return c.json(
          { approvals: page.records.map((r) => approvalView(r, at)), next: page.next },
          200,
        );
      })
      // Before /{id}: "events" is not an approval id.
      .openapi(eventsRoute, (c) => {
        const visible = visibleTo(c);
        return serveFeed(c, {
          lastEventId: CHANGE_CURSOR,
          start: () => approvals.changeCursor().catch(unavailable),
          maxStreamMs,
          read: pollChanges({
            event: "approval",
            pollMs,
            changes: (after, limit) => approvals.changes(after, limit),
            render: async (id) => {
              const r = await approvals.get(id);
              return r && visible(r) ? approvalView(r, now()) : undefined;
            },
          }),
        });
      })
      .openapi(getRoute, async (c) => {
        const r = await get(c, c.req.valid("param").id);
        return c.json({ approval: approvalView(r, now()) }, 200);
      })
      .openapi(decideRoute, async (c) => {
        const { id } = c.req.valid("param");
        const answer = c.req.valid("json");
        await get(c, id);
        const who = identityOf(c);
        const out = await approvals
          .decide(id, answer, { kid: who.kid, subject: who.subject, groups: who.groups })
          .catch(unavailable);
        keepDelivering(c);
        if (out.ok) {
          await onDecided?.(out.record);
          keepDelivering(c);
          return c.json({ approval: approvalView(out.record, now()) }, 200);
        }
        const { refusal } = out;
        await audit({
          eventType: "approval.refused",
          agentId: who.subject || "unknown",
          details: {
            approvalId: id,
            step: "decide",
            code: refusal.code,
            detail: refusal.detail,
            kid: who.kid,
            decision: answer.decision,
          },
        });
        switch (refusal.code) {
          case "not-found":
            throw new Problem(404, "not-found", "Not found", refusal.detail);
          case "self-approval":
            throw new Problem(403, "separation-of-duties", "Separation of duties", refusal.detail);
          case "not-approver":
            throw new Problem(403, "forbidden", "Forbidden", refusal.detail);
          case "already-decided":
            // Not `status`: that member is the HTTP status (RFC 9457); a string there made
            // clients unable to read the problem at all.
            throw new Problem(409, "conflict", "Already answered", refusal.detail, undefined, {
              approvalStatus: refusal.status,
            });
          default:
            throw new Problem(409, "conflict", "Conflict", refusal.detail);
        }
      })
  );
}

/** The reasons a redemption is refused, as `approvalRefusal` in the decision. */
type ApprovalRefusalCode = NonNullable<Decision["approvalRefusal"]>;

/**
 * POST /v1/evaluate's approval step, after the policy decision is audited. A `require_approval`
 * without `approvalId` opens (or shares, for the identical request) an approval and names it; with
 * `approvalId`, an approved approval bound to exactly this request and caller is redeemed once and
 * the decision becomes allow (with any other obligation of the policy kept), and anything else is
 * a deny naming why. A decision that is not `require_approval` is returned as it is: the approval
 * is neither needed nor spent.
 */
export function evaluateApprovalStep(
  approvals: ApprovalService,
  audit: AuditFn,
  keepDelivering: (c: Context<AppEnv>) => void = () => {},
) {
  return async (
    c: Context<AppEnv>,
    req: EvaluationRequest,
    d: Decision,
    approvalId: string | undefined,
  ): Promise<Decision> => {
    const approver = d.approver;
    if (d.decision !== "require_approval" || approver === undefined) return d;
    try {
      return await step(c, req, { ...d, approver }, approvalId);
    } finally {
      keepDelivering(c);
    }
  };
  async function step(
    c: Context<AppEnv>,
    req: EvaluationRequest,
    d: Decision & { approver: string },
    approvalId: string | undefined,
  ): Promise<Decision> {
    const who = identityOf(c);
    const bound: BoundRequest = {
      kid: who.kid,
      subject: who.subject,
      action: req.action,
      resource: req.resource ?? null,
      tags: req.tags ?? [],
      // The caller's context, as in the decision event: the server-set attributes (request.time)
      // differ on every call and are not what the approver saw.
      contextSha256: sha256Hex(canonicalJson(req.context ?? {})),
      policySetVersion: d.policySetVersion,
      approver: d.approver,
      approvers: d.approvers ?? [d.approver],
    };
    if (approvalId === undefined) {
      const { record } = await approvals
        .request(bound, {
          decisionId: d.decisionId ?? null,
          // Kept for the approver to read; bounded like the record's other texts.
          policyReason: d.reason === undefined ? null : clip(d.reason, 4096),
        })
        .catch(unavailable);
      return { ...d, approvalId: record.id };
    }
    const out = await approvals.redeem(approvalId, bound, d.decisionId ?? null).catch(unavailable);
    if (out.ok) {
      const by = out.record.decision?.by;
      const others = (d.conditions ?? []).filter((x) => !/_approval$/.test(x.name));
      const { conditions: _c, unmet: _u, ...rest } = d;
      return {
        ...rest,
        decision: others.length > 0 ? "allow_with_conditions" : "allow",
        ...(others.length > 0 ? { conditions: others } : {}),
        reason: `approved by ${by?.subject ?? "an approver"} (${by?.kid ?? "?"}) in approval ${approvalId}: ${out.record.decision?.reason ?? ""}`,
        approvalId,
      };
    }
    const { refusal } = out;
    await audit({
      eventType: "approval.refused",
      agentId: who.subject || "unknown",
      details: {
        approvalId,
        step: "redeem",
        code: refusal.code,
        detail: refusal.detail,
        kid: who.kid,
        decisionId: d.decisionId ?? null,
        ...(refusal.code === "mismatch" ? { fields: refusal.fields } : {}),
      },
    });
    const code: ApprovalRefusalCode = refusal.code;
    return {
      ...d,
      decision: "deny",
      reason: `approval ${approvalId} refused (${code}): ${refusal.detail}`,
      approvalId,
      approvalRefusal: code,
    };
  }
}
