// Approval records (docs/governance.md "Approvals"): a `require_approval` decision becomes a
// record bound to exactly the request that got it. Its life is pending → approved | denied |
// expired, and approved → redeemed (or expired, when nobody redeems it in time). Every transition
// is a pure function of the record and a clock; the store only compares and swaps, so the rules
// are the same on every adapter and every process.
import { z } from "zod";
import { canonicalJson, sha256Hex } from "../encoding";

/** A UUID in canonical lower-case form (approval ids are UUIDv7). */
export const ApprovalIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "a lower-case UUID")
  .meta({ description: "approval id (UUID)" });

export const ApprovalStatusSchema = z.enum([
  "pending",
  "approved",
  "denied",
  "expired",
  "redeemed",
]);
export type ApprovalStatus = z.infer<typeof ApprovalStatusSchema>;

const text = (max: number) => z.string().max(max);

/** What an approval is bound to: a redemption must match every field. */
export const BoundRequestSchema = z
  .object({
    /** The requesting key and its subject (server-set, from the authenticated key). */
    kid: text(256),
    subject: text(256),
    action: text(256),
    resource: text(256).nullable(),
    tags: z.array(text(256)).max(64),
    /** SHA-256 (hex) of the canonical JSON of the caller's context (without server attributes). */
    contextSha256: z.string().regex(/^[0-9a-f]{64}$/),
    policySetVersion: text(256),
    /** The group that must approve (`<who>_approval` → `<who>`), and every group named. */
    approver: text(256),
    approvers: z.array(text(256)).min(1).max(1024),
    /**
     * The job this approval releases (POST /v1/jobs): two identical submissions are two jobs and
     * get two approvals, and an evaluation (which has none) can never redeem a job's approval.
     */
    jobId: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,128}$/)
      .optional(),
  })
  .strict();
export type BoundRequest = z.infer<typeof BoundRequestSchema>;

export const ApprovalActorSchema = z.object({ kid: text(256), subject: text(256) }).strict();
export type ApprovalActor = z.infer<typeof ApprovalActorSchema>;

export const ApprovalRecordSchema = z
  .object({
    id: ApprovalIdSchema,
    status: ApprovalStatusSchema,
    request: BoundRequestSchema,
    /** SHA-256 of the canonical bound request: identical requests share a pending approval. */
    binding: z.string().regex(/^[0-9a-f]{64}$/),
    /** The decision that asked for approval, and the policy's reason. */
    decisionId: text(256).nullable(),
    policyReason: text(16_384).nullable(),
    createdAt: z.number().int(),
    /** Until then it may be answered; afterwards a pending approval is expired (a deny). */
    expiresAt: z.number().int(),
    decision: z
      .object({
        decision: z.enum(["approve", "deny"]),
        by: ApprovalActorSchema,
        at: z.number().int(),
        reason: text(4096),
        /** Until then an approved approval may be redeemed. */
        redeemBy: z.number().int(),
      })
      .strict()
      .nullable(),
    expiredAt: z.number().int().nullable(),
    redeemed: z
      .object({ at: z.number().int(), decisionId: text(256).nullable() })
      .strict()
      .nullable(),
    /** The store may forget the record after this (retention). */
    retainUntil: z.number().int(),
  })
  .strict();
export type ApprovalRecord = z.infer<typeof ApprovalRecordSchema>;

export interface ApprovalTimes {
  /** `[approvals] timeout_s` in ms: time to answer, and then time to redeem. */
  timeoutMs: number;
  /** `[approvals] retention_s` in ms: how long a finished record stays readable. */
  retentionMs: number;
}

/** The hash that identifies a bound request (field order and tag order are part of it). */
export function bindingOf(r: BoundRequest): string {
  return sha256Hex(canonicalJson(r));
}

export function newApproval(
  id: string,
  request: BoundRequest,
  meta: { decisionId: string | null; policyReason: string | null },
  now: number,
  times: ApprovalTimes,
): ApprovalRecord {
  return {
    id,
    status: "pending",
    request,
    binding: bindingOf(request),
    decisionId: meta.decisionId,
    policyReason: meta.policyReason,
    createdAt: now,
    expiresAt: now + times.timeoutMs,
    decision: null,
    expiredAt: null,
    redeemed: null,
    // Long enough to be answered, then redeemed, then read back for the retention period.
    retainUntil: now + 2 * times.timeoutMs + times.retentionMs,
  };
}

/**
 * The status at `now`, from stored timestamps alone: a pending approval past `expiresAt`, or an
 * approved one past `redeemBy`, is expired whether or not anyone has written that down yet.
 */
export function statusAt(r: ApprovalRecord, now: number): ApprovalStatus {
  if (r.status === "pending" && now >= r.expiresAt) return "expired";
  if (r.status === "approved" && r.decision && now >= r.decision.redeemBy) return "expired";
  return r.status;
}

/** Why a transition cannot happen. */
export type TransitionRefusal =
  | { code: "self-approval"; detail: string }
  | { code: "not-approver"; detail: string }
  | { code: "already-decided"; detail: string; status: ApprovalStatus }
  | { code: "not-approved"; detail: string }
  | { code: "denied"; detail: string }
  | { code: "expired"; detail: string }
  | { code: "already-redeemed"; detail: string }
  | { code: "mismatch"; detail: string; fields: string[] }
  | { code: "other-caller"; detail: string };

export type Transition =
  | { ok: true; next: ApprovalRecord }
  | { ok: false; refusal: TransitionRefusal };

/** What a redemption can be refused for (never an answerer's refusal). */
export type RedeemRefusal = Exclude<
  TransitionRefusal,
  { code: "self-approval" | "not-approver" | "already-decided" }
>;
export type RedeemTransition =
  | { ok: true; next: ApprovalRecord }
  | { ok: false; refusal: RedeemRefusal };

const refuse = (refusal: TransitionRefusal): Transition => ({ ok: false, refusal });

/**
 * An approver's answer. Separation of duties: the requester's subject (its own key or any other
 * key of the same subject) never answers its own request. The approver must hold every group the
 * policy named (a policy naming several groups needs one approver who is in all of them).
 */
export function decide(
  r: ApprovalRecord,
  answer: { decision: "approve" | "deny"; reason: string },
  by: ApprovalActor & { groups: readonly string[] },
  now: number,
  times: Pick<ApprovalTimes, "timeoutMs">,
): Transition {
  if (by.subject === r.request.subject) {
    return refuse({
      code: "self-approval",
      detail: `subject ${by.subject} requested this approval and cannot answer it (separation of duties)`,
    });
  }
  const missing = r.request.approvers.filter((g) => !by.groups.includes(g));
  if (missing.length > 0) {
    return refuse({
      code: "not-approver",
      detail: `answering this approval needs group ${missing.join(" and ")}; key ${by.kid} is not in it`,
    });
  }
  const status = statusAt(r, now);
  if (status !== "pending") {
    return refuse({
      code: "already-decided",
      status,
      detail: `approval ${r.id} is ${status}; it is answered once`,
    });
  }
  return {
    ok: true,
    next: {
      ...r,
      status: answer.decision === "approve" ? "approved" : "denied",
      decision: {
        decision: answer.decision,
        by: { kid: by.kid, subject: by.subject },
        at: now,
        reason: answer.reason,
        redeemBy: now + times.timeoutMs,
      },
    },
  };
}

/** Writes down an expiry that `statusAt` already reports (so it is audited once); else null. */
export function expire(r: ApprovalRecord, now: number): ApprovalRecord | null {
  if (r.status === "expired" || statusAt(r, now) !== "expired") return null;
  return { ...r, status: "expired", expiredAt: now };
}

/** The bound fields where `req` differs from the approval's request, in a stable order. */
export function mismatchedFields(bound: BoundRequest, req: BoundRequest): string[] {
  const fields: (keyof BoundRequest)[] = [
    "action",
    "resource",
    "tags",
    "contextSha256",
    "policySetVersion",
    "approver",
    "approvers",
  ];
  const differ = fields.filter((f) => canonicalJson(bound[f]) !== canonicalJson(req[f]));
  return (bound.jobId ?? null) === (req.jobId ?? null) ? differ : [...differ, "jobId"];
}

/**
 * Single-use redemption by the requester, for exactly the bound request. The caller must be the
 * requesting key itself (another key of the same subject is another caller).
 */
export function redeem(
  r: ApprovalRecord,
  req: BoundRequest,
  decisionId: string | null,
  now: number,
): RedeemTransition {
  const refuse = (refusal: RedeemRefusal): RedeemTransition => ({ ok: false, refusal });
  if (req.kid !== r.request.kid || req.subject !== r.request.subject) {
    return refuse({
      code: "other-caller",
      detail: `approval ${r.id} was requested by another key; only that key can redeem it`,
    });
  }
  const fields = mismatchedFields(r.request, req);
  if (fields.length > 0) {
    return refuse({
      code: "mismatch",
      fields,
      detail: `the request differs from the approved one in ${fields.join(", ")}`,
    });
  }
  const status = statusAt(r, now);
  switch (status) {
    case "pending":
      return refuse({ code: "not-approved", detail: `approval ${r.id} is still pending` });
    case "denied":
      return refuse({
        code: "denied",
        detail: `approval ${r.id} was denied by ${r.decision?.by.subject ?? "an approver"}`,
      });
    case "expired":
      return refuse({ code: "expired", detail: `approval ${r.id} expired` });
    case "redeemed":
      return refuse({
        code: "already-redeemed",
        detail: `approval ${r.id} was already redeemed; an approval is used once`,
      });
    case "approved":
      return { ok: true, next: { ...r, status: "redeemed", redeemed: { at: now, decisionId } } };
  }
}

/** Whether an identical request may reuse this approval instead of opening another. */
export function reusable(r: ApprovalRecord, now: number): boolean {
  const s = statusAt(r, now);
  return s === "pending" || s === "approved";
}
