// One contract for every RateLimiter adapter: memory, Redis (Lua, Redis's clock) and the Durable
// Object (workerd). Each instance gets a fresh namespace, like a fresh memory limiter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisRateLimiter } from "../../functions/node/stores/limits-redis";
import { type BucketSpec, MemoryRateLimiter, type RateLimiter } from "../../shared/limits";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("limits");
let n = 0;

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => RateLimiter][] = [
  ["memory", () => new MemoryRateLimiter()],
  ["redis", () => new RedisRateLimiter(redis, `${prefix}${n++}:`)],
  ["durable-object", () => remotePort<RateLimiter>("limits", freshName("limits"))],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Slow refill (1 token per 100 s): nothing refills during a case unless the case says so.
const slow = (key: string, burst: number): BucketSpec => ({ key, rate: 0.01, burst });

describe.each(adapters)("RateLimiter contract: %s", (_name, make) => {
  let limiter: RateLimiter;
  beforeAll(() => {
    limiter = make();
  });

  it("allows up to the burst, then refuses with how long to wait", async () => {
    const b = [slow("a", 3)];
    for (let i = 0; i < 3; i++) expect((await limiter.take("p1", b, 1)).allowed).toBe(true);
    const no = await limiter.take("p1", b, 1);
    expect(no.allowed).toBe(false);
    expect(no.limitedBy).toBe("a");
    // One token at 0.01/s: about 100 s.
    expect(no.retryAfterMs).toBeGreaterThan(90_000);
    expect(no.retryAfterMs).toBeLessThanOrEqual(100_000);
  });

  it("a cost takes that many tokens; a refusal takes none", async () => {
    const b = [slow("cost", 10)];
    expect((await limiter.take("p1", b, 7)).allowed).toBe(true);
    expect((await limiter.take("p1", b, 4)).allowed).toBe(false);
    // The refused 4 took nothing: 3 are still there.
    expect((await limiter.take("p1", b, 3)).allowed).toBe(true);
    expect((await limiter.take("p1", b, 1)).allowed).toBe(false);
  });

  it("several buckets: all or nothing, and the one that needs longest is named", async () => {
    const key = slow("key", 5);
    const subject = slow("subject", 2);
    expect((await limiter.take("p2", [key, subject], 2)).allowed).toBe(true);
    const no = await limiter.take("p2", [key, subject], 1);
    expect(no).toMatchObject({ allowed: false, limitedBy: "subject" });
    // The refusal left the key bucket alone: it still holds 3.
    expect((await limiter.take("p2", [key], 3)).allowed).toBe(true);
    expect((await limiter.take("p2", [key], 1)).allowed).toBe(false);
  });

  it("a bucket is named by partition and key: no collisions", async () => {
    const b = [slow("same", 1)];
    expect((await limiter.take("q1", b, 1)).allowed).toBe(true);
    expect((await limiter.take("q2", b, 1)).allowed).toBe(true);
    expect((await limiter.take("q1:same", [slow("x", 1)], 1)).allowed).toBe(true);
    expect((await limiter.take("q1", [slow("same:x", 1)], 1)).allowed).toBe(true);
    expect((await limiter.take("q1", b, 1)).allowed).toBe(false);
  });

  it("refills at its rate", async () => {
    // 2 tokens per second, burst 2: empty it, then wait until it is full again (this waits, it
    // does not assert a duration).
    const b = [{ key: "fast", rate: 2, burst: 2 }];
    expect((await limiter.take("p3", b, 2)).allowed).toBe(true);
    const no = await limiter.take("p3", b, 2);
    expect(no.allowed).toBe(false);
    expect(no.retryAfterMs).toBeLessThanOrEqual(1000);
    await sleep(no.retryAfterMs + 50);
    expect((await limiter.take("p3", b, 2)).allowed).toBe(true);
  });

  it("concurrent takes: exactly the burst wins", async () => {
    const b = [slow("race", 5)];
    const results = await Promise.all(Array.from({ length: 20 }, () => limiter.take("p4", b, 1)));
    expect(results.filter((r) => r.allowed)).toHaveLength(5);
  });

  it("refuses unusable input", async () => {
    await expect(limiter.take("p5", [slow("k", 2)], 3)).rejects.toThrow(RangeError);
    await expect(limiter.take("p5", [slow("k", 2)], 0)).rejects.toThrow(RangeError);
    await expect(limiter.take("p5", [slow("k", 2)], 1.5)).rejects.toThrow(RangeError);
    await expect(limiter.take("p5", [{ key: "k", rate: 0, burst: 1 }], 1)).rejects.toThrow(
      RangeError,
    );
    await expect(limiter.take("p5", [{ key: "k", rate: Number.NaN, burst: 1 }], 1)).rejects.toThrow(
      RangeError,
    );
    await expect(limiter.take("p5", [slow("k", 2), slow("k", 2)], 1)).rejects.toThrow(RangeError);
    await expect(limiter.take("p5", [], 1)).rejects.toThrow(RangeError);
  });
});

describe("MemoryRateLimiter bounds", () => {
  it("forgets full buckets to make room, and fails closed when every bucket is live", async () => {
    let t = 1_000_000;
    const limiter = new MemoryRateLimiter({ maxEntries: 2, now: () => t });
    const rule = { rate: 1, burst: 1 };
    expect((await limiter.take("p", [{ key: "a", ...rule }], 1)).allowed).toBe(true);
    expect((await limiter.take("p", [{ key: "b", ...rule }], 1)).allowed).toBe(true);
    await expect(limiter.take("p", [{ key: "c", ...rule }], 1)).rejects.toThrow(/full/);
    t += 1000; // a and b are full again: forgettable
    expect((await limiter.take("p", [{ key: "c", ...rule }], 1)).allowed).toBe(true);
    expect(limiter.size).toBe(1);
  });
});

describe("RedisRateLimiter storage", () => {
  it("a bucket's state expires once it would be full again", async () => {
    const p = `${prefix}ttl:`;
    const limiter = new RedisRateLimiter(redis, p);
    await limiter.take("part", [{ key: "k", rate: 1, burst: 30 }], 10);
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, page] = await redis.scan(cursor, "MATCH", `${p}*`, "COUNT", 1000);
      cursor = next;
      keys.push(...page);
    } while (cursor !== "0");
    expect(keys).toHaveLength(1);
    const ttl = await redis.pttl(keys[0]!);
    // 10 tokens at 1/s refill in 10 s (plus a second of slack).
    expect(ttl).toBeGreaterThan(9_000);
    expect(ttl).toBeLessThanOrEqual(11_000);
  });
});
