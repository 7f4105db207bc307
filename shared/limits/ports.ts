// The RateLimiter port: token buckets whose state lives where every API process sees it (Redis on
// Node, a Durable Object on the edge, a Map in one process). Callers name the buckets a request
// draws on (per key id and per subject) and the partition they live in.
import type { BucketSpec, TakeResult } from "./bucket";

export interface RateLimiter {
  /**
   * Takes `cost` tokens from every named bucket, or from none, atomically. `partition` groups
   * buckets that are decided together (one Durable Object, one Redis cluster slot): every bucket
   * of one take is in the same partition, and a bucket is identified by (partition, key).
   * Rejects with RangeError on unusable input (see checkTake), and when the store is unreachable.
   */
  take(partition: string, buckets: readonly BucketSpec[], cost: number): Promise<TakeResult>;
}

/** The limits a caller is held to (docs/governance.md "Quotas"); see resolveLimits. */
export type LimitKind =
  | "requests"
  | "evaluations"
  | "audit_appends"
  | "queued_jobs"
  | "running_jobs";

/** A limit refused a request: the HTTP layer answers 429 `rate-limited` with Retry-After. */
export class LimitExceededError extends Error {
  override readonly name = "LimitExceededError";
  constructor(
    readonly limit: LimitKind,
    readonly retryAfterMs: number,
    message: string,
  ) {
    super(message);
  }
}
