// Redis is not trusted (docs/architecture.md): with a MAC key, a policy written or edited directly
// in Redis is refused — the engine fails closed (denies) instead of enforcing the planted policy.
import { describe, expect, it } from "vitest";
import { RedisPolicyStore } from "../../functions/node/stores/policy-redis";
import { PolicyEngine } from "../../shared/policy";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("polmac");
const macKey = new Uint8Array(32).fill(3);
const ping = { action: "ping", context: {} };

describe("RedisPolicyStore with record MACs", () => {
  it("enforces its own policies; a policy planted through an unauthenticated store denies everything", async () => {
    const store = new RedisPolicyStore(redis, `${prefix}a:`, { macKey });
    const engine = await PolicyEngine.create({ store, cache: false });
    expect((await engine.put("p", "policy p { deny: ping }")).ok).toBe(true);
    expect(engine.evaluate(ping).decision).toBe("deny");

    // An attacker with Redis access writes an allow-everything policy with a correct sha256.
    const attacker = await PolicyEngine.create({
      store: new RedisPolicyStore(redis, `${prefix}a:`),
      cache: false,
    });
    expect((await attacker.put("p", "policy p { allow: * }")).ok).toBe(true);

    await expect(engine.reload()).rejects.toThrow(/integrity/);
    const d = engine.evaluate(ping);
    expect(d.decision).toBe("deny");
    expect(d.reason).toMatch(/integrity/);
  });

  it("refuses an edited record", async () => {
    const store = new RedisPolicyStore(redis, `${prefix}b:`, { macKey });
    await store.put("q", {
      source: "policy q { deny: x }",
      sha256: "0".repeat(64),
      createdAt: new Date().toISOString(),
    });
    const key = `${prefix}b:v:q`;
    const stored = JSON.parse((await redis.hget(key, "1"))!) as Record<string, string>;
    await redis.hset(key, "1", JSON.stringify({ ...stored, source: "policy q { allow: x }" }));
    await expect(store.get("q")).rejects.toThrow(/integrity/);
  });
});
