// Key records' admin-set groups and trust (docs/governance.md), and service-held keys: records
// written before these existed read as groups [] and trust 0 (and an old held key as a held key),
// Redis cannot change groups or trust behind the MAC, and no held key, old or new, authenticates.
import { describe, expect, it } from "vitest";
import { requestKeyResolver } from "../../functions/app";
import { RedisKeyRegistry } from "../../functions/node/stores/keys-redis";
import { ed25519Kid, generateEd25519KeyPair, hmacSha256 } from "../../shared/crypto";
import { canonicalJson, toBase64Url, toHex, utf8 } from "../../shared/encoding";
import {
  fromStored,
  HELD_SIGNATURE_CONTEXT,
  heldSignatureInput,
  isHeldKey,
  KeyRegistryError,
  MemoryKeyRegistry,
  rotation,
} from "../../shared/keys";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("keyattrs");
const macKey = new Uint8Array(32).fill(9);
const T0 = 1_750_000_000_000;

/** A stored record as Sigil wrote it before keys had groups and trust. */
async function legacyStored(role: string, subject: string) {
  const { publicKey } = await generateEd25519KeyPair();
  const kid = ed25519Kid(publicKey);
  return {
    kid,
    role,
    subject,
    publicKey: toBase64Url(publicKey),
    status: "active",
    createdAt: T0,
    notBefore: T0,
  };
}

async function codeOf(p: Promise<unknown>) {
  try {
    await p;
    return "ok";
  } catch (e) {
    return e instanceof KeyRegistryError ? e.code : String(e);
  }
}

describe("records written before groups and trust", () => {
  it("read as groups [] and trust 0", async () => {
    const r = fromStored(await legacyStored("agent", "old-agent"));
    expect(r).toMatchObject({ groups: [], trust: 0, role: "agent" });
  });

  it("read the same through Redis with its record MAC (the MAC covered only what was stored)", async () => {
    const reg = new RedisKeyRegistry(redis, prefix, { macKey });
    const stored = await legacyStored("agent", "old-agent");
    const mac = hmacSha256(
      macKey,
      utf8(`sigil.key-record.v1\n${stored.kid}\n${canonicalJson(stored)}`),
    );
    await redis.set(
      `${prefix}key:${stored.kid}`,
      JSON.stringify({ record: stored, mac: toHex(mac) }),
    );
    await redis.zadd(`${prefix}keys`, T0, stored.kid);
    await redis.zadd(`${prefix}role:agent`, T0, stored.kid);
    expect(await reg.get(stored.kid)).toMatchObject({ groups: [], trust: 0, status: "active" });
    // Written back (a revocation), the record gains the fields and a MAC over them.
    const revoked = await reg.revoke(stored.kid, T0 + 1);
    expect(await reg.get(stored.kid)).toEqual(revoked);
    const raw = JSON.parse((await redis.get(`${prefix}key:${stored.kid}`))!);
    expect(raw.record).toMatchObject({ groups: [], trust: 0 });
  });
});

describe("Redis cannot grant groups or trust", () => {
  it("a record whose trust or groups were edited in Redis fails its integrity check", async () => {
    const reg = new RedisKeyRegistry(redis, prefix, { macKey });
    for (const edit of [
      (r: Record<string, unknown>) => ({ ...r, trust: 1 }),
      (r: Record<string, unknown>) => ({ ...r, groups: ["supervisor"] }),
      // Stripping the fields is an edit too: the MAC covers them.
      (r: Record<string, unknown>) => {
        const { groups: _g, trust: _t, ...rest } = r;
        return rest;
      },
    ]) {
      const { publicKey } = await generateEd25519KeyPair();
      const r = await reg.register({
        role: "agent",
        subject: "a",
        publicKey,
        createdAt: T0,
        groups: ["ops"],
        trust: 0.2,
      });
      const key = `${prefix}key:${r.kid}`;
      const stored = JSON.parse((await redis.get(key))!) as {
        record: Record<string, unknown>;
        mac: string;
      };
      await redis.set(key, JSON.stringify({ ...stored, record: edit(stored.record) }));
      expect(await codeOf(reg.get(r.kid))).toBe("invalid");
    }
  });
});

describe("service-held keys", () => {
  it("an old held key (agent under held:) and a role-held key never authenticate a request", async () => {
    const legacy = fromStored(await legacyStored("agent", "held:alice"));
    expect(isHeldKey(legacy)).toBe(true);
    const reg = new MemoryKeyRegistry();
    const held = await reg.register({
      role: "held",
      subject: "held:bob",
      publicKey: (await generateEd25519KeyPair()).publicKey,
      createdAt: Date.now(),
    });
    const agent = await reg.register({
      role: "agent",
      subject: "carol",
      publicKey: (await generateEd25519KeyPair()).publicKey,
      createdAt: Date.now(),
      groups: ["ops"],
      trust: 0.5,
    });
    const records = new Map([
      [legacy.kid, legacy],
      [held.kid, held],
      [agent.kid, agent],
    ]);
    const resolve = requestKeyResolver({ get: async (kid) => records.get(kid) }, Date.now);
    expect(await resolve(legacy.kid)).toMatchObject({ status: "revoked" });
    expect(await resolve(held.kid)).toMatchObject({ status: "revoked" });
    // An ordinary agent key resolves, with its admin-set attributes for the policy context.
    expect(await resolve(agent.kid)).toMatchObject({
      status: "active",
      role: "agent",
      subject: "carol",
      groups: ["ops"],
      trust: 0.5,
    });
  });

  it("rotating an old held key makes the new key a role-held key", async () => {
    const legacy = fromStored(await legacyStored("agent", "held:alice"));
    const [, next] = rotation(legacy, (await generateEd25519KeyPair()).publicKey, T0 + 5);
    expect(next).toMatchObject({ role: "held", subject: "held:alice" });
  });

  it("signs context || message: never the bare message", () => {
    const m = utf8('"@method": POST');
    const input = heldSignatureInput(m);
    expect(new TextDecoder().decode(input)).toBe(`${HELD_SIGNATURE_CONTEXT}"@method": POST`);
    expect(HELD_SIGNATURE_CONTEXT).toBe("sigil.held-signature.v1\n");
  });
});
