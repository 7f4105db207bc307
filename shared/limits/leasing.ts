// A RateLimiter in front of a shared one (Redis, a Durable Object) that takes tokens from it in
// chunks and spends them locally: a caller far below its limit costs a store round trip every
// tenth of its burst instead of one per request (on Node that trip is a write Redis fsyncs, which
// doubled the cost of an evaluation). It never admits more than the shared buckets hold: every
// token it spends was taken from them first. What it can do is hold up to a chunk a process has
// not spent for up to `leaseMs`, so another process sees that much less; small buckets (burst
// under 1 / fraction) get chunks of one request, i.e. exact answers on every request.
import { type BucketSpec, checkTake, type TakeResult } from "./bucket";
import type { RateLimiter } from "./ports";

export interface LeasingOptions {
  /** A chunk is this share of the smallest burst of the buckets. Default 0.1. */
  fraction?: number;
  /** How long unspent tokens of a chunk may be spent here. Default 1 s. */
  leaseMs?: number;
  /** Leases kept at most (expired ones are dropped first, then the oldest). Default 10,000. */
  maxEntries?: number;
  now?: () => number;
}

interface Lease {
  tokens: number;
  until: number;
}

export class LeasingRateLimiter implements RateLimiter {
  readonly #inner: RateLimiter;
  readonly #leases = new Map<string, Lease>();
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #fraction: number;
  readonly #leaseMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(inner: RateLimiter, opts: LeasingOptions = {}) {
    this.#inner = inner;
    this.#fraction = opts.fraction ?? 0.1;
    this.#leaseMs = opts.leaseMs ?? 1000;
    this.#max = opts.maxEntries ?? 10_000;
    this.#now = opts.now ?? Date.now;
  }

  async take(partition: string, buckets: readonly BucketSpec[], cost: number): Promise<TakeResult> {
    checkTake(buckets, cost);
    // The rules are part of the name: a changed limit starts from the shared buckets again.
    const id = JSON.stringify([partition, ...buckets.map((b) => [b.key, b.rate, b.burst])]);
    for (;;) {
      if (this.#spend(id, cost)) return { allowed: true, retryAfterMs: 0 };
      // One trip per lease at a time: concurrent requests wait for it and spend what it brought,
      // rather than each draining the shared buckets into chunks they cannot use.
      const pending = this.#inflight.get(id);
      if (!pending) break;
      await pending;
    }
    const trip = this.#fetch(partition, buckets, cost, id);
    const done = trip.then(
      () => undefined,
      () => undefined,
    );
    this.#inflight.set(id, done);
    try {
      return await trip;
    } finally {
      this.#inflight.delete(id);
    }
  }

  /** Spends `cost` from a live lease, if it holds that much. */
  #spend(id: string, cost: number): boolean {
    const lease = this.#leases.get(id);
    if (!lease || lease.until <= this.#now() || lease.tokens < cost) return false;
    lease.tokens -= cost;
    return true;
  }

  async #fetch(
    partition: string,
    buckets: readonly BucketSpec[],
    cost: number,
    id: string,
  ): Promise<TakeResult> {
    const burst = Math.min(...buckets.map((b) => b.burst));
    const chunk = Math.min(burst, Math.max(cost, Math.floor(burst * this.#fraction)));
    let got = chunk;
    let out = await this.#inner.take(partition, buckets, chunk);
    if (!out.allowed && chunk > cost) {
      // Not a whole chunk left: this request alone may still fit.
      got = cost;
      out = await this.#inner.take(partition, buckets, cost);
    }
    if (!out.allowed) return out;
    if (got > cost) this.#keep(id, got - cost, this.#now());
    return { allowed: true, retryAfterMs: 0 };
  }

  #keep(id: string, tokens: number, now: number): void {
    const lease = this.#leases.get(id);
    if (lease && lease.until > now) {
      lease.tokens += tokens;
      return;
    }
    this.#leases.delete(id);
    if (this.#leases.size >= this.#max) {
      for (const [k, l] of this.#leases) if (l.until <= now) this.#leases.delete(k);
      // Still full: drop the oldest (its unspent tokens are only lost, never granted twice).
      for (const k of this.#leases.keys()) {
        if (this.#leases.size < this.#max) break;
        this.#leases.delete(k);
      }
    }
    this.#leases.set(id, { tokens, until: now + this.#leaseMs });
  }
}
