// LeasingRateLimiter: takes tokens from the shared buckets in chunks and spends them locally.
// It must never admit more than the shared buckets hold, however many "processes" lease from
// them, and small buckets must still be exact.
import { describe, expect, it } from "vitest";
import {
  type BucketSpec,
  LeasingRateLimiter,
  MemoryRateLimiter,
  type RateLimiter,
} from "../../shared/limits";

/** A shared limiter that counts the store trips made to it. */
function counted(inner: RateLimiter) {
  let trips = 0;
  return {
    limiter: {
      take: (p: string, b: readonly BucketSpec[], c: number) => {
        trips++;
        return inner.take(p, b, c);
      },
    } satisfies RateLimiter,
    trips: () => trips,
  };
}

const slow = (key: string, burst: number): BucketSpec => ({ key, rate: 0.001, burst });

describe("LeasingRateLimiter", () => {
  it("three processes leasing from one set of buckets admit exactly the burst in all", async () => {
    const shared = new MemoryRateLimiter();
    const procs = [0, 1, 2].map(() => new LeasingRateLimiter(shared));
    const buckets = [slow("key", 100), slow("subject", 100)];
    let allowed = 0;
    for (let i = 0; i < 400; i++)
      if ((await procs[i % 3]!.take("p", buckets, 1)).allowed) allowed++;
    // Some leased tokens may sit unspent in another process; none is ever granted twice.
    expect(allowed).toBeLessThanOrEqual(100);
    expect(allowed).toBeGreaterThanOrEqual(100 - 3 * 10);
  });

  it("a caller far below its limit costs one store trip per chunk, not per request", async () => {
    const { limiter, trips } = counted(new MemoryRateLimiter());
    const leasing = new LeasingRateLimiter(limiter);
    for (let i = 0; i < 100; i++)
      expect((await leasing.take("p", [slow("k", 1000)], 1)).allowed).toBe(true);
    expect(trips()).toBe(1); // a chunk of 100
  });

  it("small buckets are exact, and a request that still fits is not refused for want of a chunk", async () => {
    const { limiter, trips } = counted(new MemoryRateLimiter());
    const leasing = new LeasingRateLimiter(limiter);
    const b = [slow("small", 5)];
    for (let i = 0; i < 5; i++) expect((await leasing.take("p", b, 1)).allowed).toBe(true);
    expect(trips()).toBe(5);
    const no = await leasing.take("p", b, 1);
    expect(no.allowed).toBe(false);
    expect(no.retryAfterMs).toBeGreaterThan(0);
    // 25 of 30 taken as 3 chunks of 3 and single requests: the last ones fit exactly.
    const c = new LeasingRateLimiter(new MemoryRateLimiter());
    let ok = 0;
    for (let i = 0; i < 40; i++) if ((await c.take("p", [slow("b", 30)], 1)).allowed) ok++;
    expect(ok).toBe(30);
  });

  it("a burst arriving at once is served from the chunks it brought, not refused", async () => {
    const { limiter, trips } = counted(new MemoryRateLimiter());
    const leasing = new LeasingRateLimiter(limiter);
    const b = [slow("key", 400), slow("subject", 400)];
    const out = await Promise.all(Array.from({ length: 200 }, () => leasing.take("p", b, 1)));
    expect(out.filter((r) => r.allowed)).toHaveLength(200);
    expect(trips()).toBeLessThanOrEqual(5); // chunks of 40
    // And past the burst, concurrent requests are refused, never over-admitted.
    const more = await Promise.all(Array.from({ length: 300 }, () => leasing.take("p", b, 1)));
    expect(more.filter((r) => r.allowed)).toHaveLength(200);
  });

  it("unspent tokens are dropped once the lease ends", async () => {
    let t = 1_000_000;
    const { limiter, trips } = counted(new MemoryRateLimiter({ now: () => t }));
    const leasing = new LeasingRateLimiter(limiter, { leaseMs: 1000, now: () => t });
    await leasing.take("p", [slow("k", 1000)], 1);
    t += 1001;
    await leasing.take("p", [slow("k", 1000)], 1);
    expect(trips()).toBe(2);
  });
});
