// RateLimiter in one process's memory: for tests, tools and single-process deployments. Another
// process has its own buckets, so it does not bound a deployment of several (use Redis or the
// Durable Object adapter there).
import {
  type BucketSpec,
  type BucketState,
  checkTake,
  msUntilFull,
  type TakeResult,
  take,
} from "./bucket";
import type { RateLimiter } from "./ports";

interface Entry extends BucketState {
  /** From then on the bucket is full again, so the entry says nothing an absent one would not. */
  forgetAt: number;
}

export interface MemoryRateLimiterOptions {
  /** Live buckets kept at most; beyond it (after dropping full ones) takes fail closed. */
  maxEntries?: number;
  now?: () => number;
}

export class MemoryRateLimiter implements RateLimiter {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: MemoryRateLimiterOptions = {}) {
    this.#max = opts.maxEntries ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  async take(partition: string, buckets: readonly BucketSpec[], cost: number): Promise<TakeResult> {
    checkTake(buckets, cost);
    const now = this.#now();
    // JSON keys: no separator can make two (partition, key) pairs collide.
    const ids = buckets.map((b) => JSON.stringify([partition, b.key]));
    const out = take(
      ids.map((id) => this.#entries.get(id)),
      buckets,
      cost,
      now,
    );
    if (!out.next)
      return { allowed: false, retryAfterMs: out.retryAfterMs, limitedBy: out.limitedBy! };
    const fresh = ids.filter((id) => !this.#entries.has(id)).length;
    if (fresh > 0 && this.#entries.size + fresh > this.#max) {
      this.#prune(now);
      if (this.#entries.size + fresh > this.#max) throw new Error("rate limiter is full");
    }
    out.next.forEach((s, i) => {
      this.#entries.set(ids[i]!, { ...s, forgetAt: now + msUntilFull(s.tokens, buckets[i]!) });
    });
    return { allowed: true, retryAfterMs: 0 };
  }

  get size(): number {
    return this.#entries.size;
  }

  #prune(now: number): void {
    for (const [id, e] of this.#entries) if (e.forgetAt <= now) this.#entries.delete(id);
  }
}
