// One contract for every ReplayCache adapter: memory (lru-cache) and Redis (SET NX EX).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisReplayCache } from "../../functions/node/stores/replay-redis";
import { MemoryReplayCache, type ReplayCache, ReplayCacheFullError } from "../../shared/httpsig";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("replay");
let n = 0;

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => ReplayCache][] = [
  ["memory", () => new MemoryReplayCache()],
  // A fresh sub-prefix per instance keeps cases independent, like a fresh memory cache.
  ["redis", () => new RedisReplayCache(redis, { prefix: `${prefix}${n++}:` })],
  // The DO adapter inside workerd (Miniflare); a fresh object-name prefix per instance.
  ["durable-object", () => remotePort<ReplayCache>("replay", freshName("replay"))],
];

describe.each(adapters)("ReplayCache contract: %s", (_name, make) => {
  let cache: ReplayCache;
  beforeAll(() => {
    cache = make();
  });

  it("a nonce is fresh once, then seen", async () => {
    expect(await cache.checkAndStore("k1", "nonce-a", 60)).toBe(true);
    expect(await cache.checkAndStore("k1", "nonce-a", 60)).toBe(false);
    expect(await cache.checkAndStore("k1", "nonce-a", 60)).toBe(false);
  });

  it("nonces are scoped per keyid, with no separator collisions", async () => {
    expect(await cache.checkAndStore("k2", "shared", 60)).toBe(true);
    expect(await cache.checkAndStore("k3", "shared", 60)).toBe(true);
    expect(await cache.checkAndStore("a:b", "c", 60)).toBe(true);
    expect(await cache.checkAndStore("a", "b:c", 60)).toBe(true);
    expect(await cache.checkAndStore('["a"', '"b"]', 60)).toBe(true);
  });

  it("concurrent attempts with one nonce: exactly one wins", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () => cache.checkAndStore("k4", "race", 60)),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("a nonce is forgotten after its TTL", async () => {
    expect(await cache.checkAndStore("k5", "short", 1)).toBe(true);
    expect(await cache.checkAndStore("k5", "short", 1)).toBe(false);
    // Wait past the TTL (this waits, it does not assert a duration).
    await new Promise((r) => setTimeout(r, 2100));
    expect(await cache.checkAndStore("k5", "short", 1)).toBe(true);
  });

  it("rejects a non-positive TTL", async () => {
    await expect(cache.checkAndStore("k6", "x", 0)).rejects.toThrow(RangeError);
    await expect(cache.checkAndStore("k6", "x", Number.NaN)).rejects.toThrow(RangeError);
  });
});

describe("MemoryReplayCache bounds", () => {
  it("when full of live nonces it refuses instead of evicting one", async () => {
    const cache = new MemoryReplayCache({ maxEntries: 3 });
    for (const x of ["a", "b", "c"]) expect(await cache.checkAndStore("k", x, 60)).toBe(true);
    await expect(cache.checkAndStore("k", "d", 60)).rejects.toThrow(ReplayCacheFullError);
    // Nothing was evicted: the old nonces are still seen.
    for (const x of ["a", "b", "c"]) expect(await cache.checkAndStore("k", x, 60)).toBe(false);
  });

  it("expired entries make room (injected clock)", async () => {
    let t = 1_000_000;
    const cache = new MemoryReplayCache({ maxEntries: 2, now: () => t });
    expect(await cache.checkAndStore("k", "a", 10)).toBe(true);
    expect(await cache.checkAndStore("k", "b", 10)).toBe(true);
    t += 11_000;
    expect(await cache.checkAndStore("k", "c", 10)).toBe(true);
    expect(await cache.checkAndStore("k", "a", 10)).toBe(true);
    expect(cache.size).toBe(2);
  });
});

describe("RedisReplayCache storage", () => {
  it("sets an expiry on every stored nonce", async () => {
    const p = `${prefix}ttl:`;
    const cache = new RedisReplayCache(redis, { prefix: p });
    await cache.checkAndStore("k", "n", 30);
    // SCAN may return a match on any page of a shared server: walk the cursor to the end.
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, page] = await redis.scan(cursor, "MATCH", `${p}*`, "COUNT", 1000);
      cursor = next;
      keys.push(...page);
    } while (cursor !== "0");
    expect(keys).toHaveLength(1);
    const ttl = await redis.ttl(keys[0]!);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(30);
  });
});
