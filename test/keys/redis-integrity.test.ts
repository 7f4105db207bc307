// Redis is not trusted (docs/architecture.md): with a MAC key, a key record written or edited
// directly in Redis — say, an injected admin key — is refused, not believed.
import { describe, expect, it } from "vitest";
import { RedisKeyRegistry } from "../../functions/node/stores/keys-redis";
import { generateEd25519KeyPair } from "../../shared/crypto";
import { KeyRegistryError } from "../../shared/keys";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("keymac");
const macKey = new Uint8Array(32).fill(7);

async function codeOf(p: Promise<unknown>) {
  try {
    await p;
    return "ok";
  } catch (e) {
    return e instanceof KeyRegistryError ? e.code : String(e);
  }
}

describe("RedisKeyRegistry with record MACs", () => {
  it("round-trips its own records, and refuses an injected admin key", async () => {
    const reg = new RedisKeyRegistry(redis, prefix, { macKey });
    const { publicKey } = await generateEd25519KeyPair();
    const r = await reg.register({ role: "agent", subject: "a", publicKey, createdAt: Date.now() });
    expect((await reg.get(r.kid))?.role).toBe("agent");
    await reg.revoke(r.kid, Date.now());
    expect((await reg.get(r.kid))?.status).toBe("revoked");

    // An attacker with Redis access registers an admin key through an unauthenticated registry.
    const attacker = new RedisKeyRegistry(redis, prefix);
    const evil = await generateEd25519KeyPair();
    const injected = await attacker.register({
      role: "admin",
      subject: "evil",
      publicKey: evil.publicKey,
      createdAt: Date.now(),
    });
    expect(await codeOf(reg.get(injected.kid))).toBe("invalid");
    expect(await codeOf(reg.list("admin"))).toBe("invalid");
  });

  it("refuses an edited record (role raised to admin) and a record tagged with another key", async () => {
    const reg = new RedisKeyRegistry(redis, prefix, { macKey });
    const { publicKey } = await generateEd25519KeyPair();
    const r = await reg.register({ role: "agent", subject: "b", publicKey, createdAt: Date.now() });
    const key = `${prefix}key:${r.kid}`;
    const stored = JSON.parse((await redis.get(key))!) as { record: { role: string }; mac: string };
    await redis.set(
      key,
      JSON.stringify({ ...stored, record: { ...stored.record, role: "admin" } }),
    );
    expect(await codeOf(reg.get(r.kid))).toBe("invalid");
    const other = new RedisKeyRegistry(redis, prefix, { macKey: new Uint8Array(32).fill(8) });
    const r2 = await other.register({
      role: "agent",
      subject: "c",
      publicKey: (await generateEd25519KeyPair()).publicKey,
      createdAt: Date.now(),
    });
    expect(await codeOf(reg.get(r2.kid))).toBe("invalid");
  });
});
