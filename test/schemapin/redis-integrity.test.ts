// Redis is not trusted (docs/architecture.md): with a MAC key, a pin written or edited directly in
// Redis — say, one that trusts an attacker's tool key — is refused, never believed.
import { describe, expect, it } from "vitest";
import { RedisPinStore } from "../../functions/node/stores/pins-redis";
import type { PinRecord } from "../../shared/schemapin";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("pinmac");
const macKey = new Uint8Array(32).fill(5);

const pin = (fingerprint: string): PinRecord => ({
  toolId: "calc",
  domain: "tools.example.com",
  status: "pinned",
  fingerprint: `sha256:${fingerprint.repeat(64)}`,
  publicKeyPem: "-----BEGIN PUBLIC KEY-----\nunused\n-----END PUBLIC KEY-----\n",
  algorithm: "ES256",
  source: "admin",
  firstSeenAt: 1,
  pinnedAt: 1,
  expiresAt: null,
});

describe("RedisPinStore with record MACs", () => {
  it("round-trips its own pins; refuses one planted or edited through Redis", async () => {
    const store = new RedisPinStore(redis, prefix, { macKey });
    expect(await store.compareAndSwap("tools.example.com", "calc", null, pin("a"))).toBe(true);
    expect((await store.get("tools.example.com", "calc"))?.fingerprint).toBe(
      `sha256:${"a".repeat(64)}`,
    );

    const attacker = new RedisPinStore(redis, prefix);
    await attacker.delete("tools.example.com", "calc");
    expect(await attacker.compareAndSwap("tools.example.com", "calc", null, pin("b"))).toBe(true);
    await expect(store.get("tools.example.com", "calc")).rejects.toThrow(/integrity/);
    await expect(store.list("tools.example.com")).rejects.toThrow(/integrity/);

    // A genuine pin moved under another tool's field is refused too (the MAC binds the field).
    await redis.del(`${prefix}pins:tools.example.com`);
    expect(await store.compareAndSwap("tools.example.com", "calc", null, pin("c"))).toBe(true);
    const genuine = await redis.hget(`${prefix}pins:tools.example.com`, "calc");
    await redis.hset(`${prefix}pins:tools.example.com`, "other", genuine!);
    await expect(store.get("tools.example.com", "other")).rejects.toThrow(/integrity/);
  });
});
