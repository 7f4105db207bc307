// Identity comes from the server, never from the request (docs/governance.md): the attributes a
// policy sees about its caller are set here from the authenticated key, for /v1/evaluate, every
// item of /v1/evaluate/batch and the jobs route alike.
import type { JsonObject } from "./schema";

/** Top-level context attributes only the server may set: a request carrying one is a 400. */
export const RESERVED_CONTEXT_ATTRIBUTES = ["agent", "request"] as const;

/** The authenticated caller: the key that signed the request and its admin-set record. */
export interface CallerIdentity {
  kid: string;
  subject: string;
  role: string;
  groups: readonly string[];
  trust: number;
}

/** The reserved attributes a caller's context tries to set (own properties only), in order. */
export function reservedAttributesIn(context: object): string[] {
  return RESERVED_CONTEXT_ATTRIBUTES.filter((k) => Object.hasOwn(context, k));
}

/**
 * `request.time`: the server's clock as RFC 3339 UTC, to the second. A second, not a millisecond,
 * so that identical requests within a second still share a decision-cache entry.
 */
export const requestTime = (nowMs: number): string =>
  new Date(Math.floor(nowMs / 1000) * 1000).toISOString().replace(".000Z", "Z");

/**
 * The context a policy evaluates: the caller's own attributes, then `agent` and `request` from the
 * server. Server values always win; routes refuse a context that carries them before getting here.
 */
export function withServerAttributes(
  context: JsonObject,
  who: CallerIdentity,
  nowMs: number,
): JsonObject {
  return {
    ...context,
    agent: {
      kid: who.kid,
      subject: who.subject,
      role: who.role,
      groups: [...who.groups],
      trust: who.trust,
    },
    request: { time: requestTime(nowMs) },
  };
}
