// RateLimiter over LimitsObject: one Durable Object per partition (a subject with its keys), so
// limits hold across every isolate and the hot path touches one object.
import type { BucketSpec, RateLimiter, TakeResult } from "../../../shared/limits";
import { unwrap } from "../rpc";
import { type DurableObjectNamespace, stubFor } from "../runtime";
import type { LimitsObject } from "./object";

export class DoRateLimiter implements RateLimiter {
  constructor(
    private readonly ns: DurableObjectNamespace<LimitsObject>,
    /** Namespaces the object names (tests use a fresh one per instance). */
    private readonly prefix = "limits:",
  ) {}

  async take(partition: string, buckets: readonly BucketSpec[], cost: number): Promise<TakeResult> {
    const stub = stubFor(this.ns, `${this.prefix}${partition}`);
    return unwrap(await stub.take([...buckets], cost));
  }
}
