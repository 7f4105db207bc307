// One KeyRegistry contract, run against every adapter: a behaviour difference is a failing test.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisKeyRegistry } from "../../functions/node/stores/keys-redis";
import { ed25519Kid, generateEd25519KeyPair } from "../../shared/crypto";
import {
  type KeyRecord,
  type KeyRegistry,
  KeyRegistryError,
  keyAuditEvent,
  MemoryKeyRegistry,
  usableForNewRequest,
  validAt,
} from "../../shared/keys";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const T0 = 1_750_000_000_000;
const DAY = 86_400_000;

const newKey = async () => (await generateEd25519KeyPair()).publicKey;

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(KeyRegistryError);
  return (e as KeyRegistryError).code;
}

let redis: Redis;
const prefix = testPrefix("keys-contract");
let n = 0;

beforeAll(() => {
  redis = connectRedis();
});
afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => KeyRegistry][] = [
  ["memory", () => new MemoryKeyRegistry()],
  ["redis", () => new RedisKeyRegistry(redis, `${prefix}${n++}:`)],
  // The DO adapter runs inside workerd (Miniflare), one fresh KeysObject per instance.
  ["durable-object", () => remotePort<KeyRegistry>("keys", freshName("keys"))],
];

describe.each(adapters)("KeyRegistry contract: %s", (_name, make) => {
  it("registers an active key under its RFC 7638 kid and returns it from get", async () => {
    const reg = make();
    const publicKey = await newKey();
    const r = await reg.register({ role: "agent", subject: "agent-1", publicKey, createdAt: T0 });
    expect(r).toMatchObject({ kid: ed25519Kid(publicKey), role: "agent", subject: "agent-1" });
    expect(r.status).toBe("active");
    expect(r.notBefore).toBe(T0);
    expect(await reg.get(r.kid)).toEqual(r);
    expect(await reg.get("no-such-kid")).toBeUndefined();
    expect(keyAuditEvent("key.created", r)).toEqual({
      type: "key.created",
      kid: r.kid,
      role: "agent",
      subject: "agent-1",
      at: T0,
      groups: [],
      trust: 0,
    });
  });

  it("keeps admin-set groups and trust: stored, listed, carried across rotation, audited", async () => {
    const reg = make();
    const r = await reg.register({
      role: "agent",
      subject: "ops-bot",
      publicKey: await newKey(),
      createdAt: T0,
      groups: ["ops", "supervisor"],
      trust: 0.75,
    });
    expect(r).toMatchObject({ groups: ["ops", "supervisor"], trust: 0.75 });
    expect(await reg.get(r.kid)).toEqual(r);
    expect((await reg.list("agent")).find((x) => x.kid === r.kid)).toEqual(r);
    const plain = await reg.register({
      role: "worker",
      subject: "w",
      publicKey: await newKey(),
      createdAt: T0,
    });
    expect(plain).toMatchObject({ groups: [], trust: 0 });
    expect(await reg.get(plain.kid)).toEqual(plain);

    const next = await reg.rotate(r.kid, await newKey(), T0 + 10);
    expect(next).toMatchObject({ groups: ["ops", "supervisor"], trust: 0.75 });
    expect(await reg.get(next.kid)).toEqual(next);
    expect(keyAuditEvent("key.rotated", next)).toMatchObject({
      groups: ["ops", "supervisor"],
      trust: 0.75,
    });
    const revoked = await reg.revoke(next.kid, T0 + 20);
    expect(revoked).toMatchObject({ groups: ["ops", "supervisor"], trust: 0.75 });
    expect(keyAuditEvent("key.revoked", revoked)).toMatchObject({ trust: 0.75 });
  });

  it("refuses groups and trust out of bounds, and the held: subject outside role held", async () => {
    const reg = make();
    const base = { role: "agent", subject: "x", createdAt: T0 };
    const bad = [
      { groups: ["has space"] },
      { groups: ["-leading"] },
      { groups: ["ok", "ok"] },
      { groups: ["g\ud800"] },
      { groups: ["x".repeat(65)] },
      { groups: Array.from({ length: 33 }, (_, i) => `g${i}`) },
      { trust: 1.01 },
      { trust: -0.1 },
      { trust: Number.NaN },
      { subject: "held:alice" },
      { role: "held", subject: "alice" },
    ];
    for (const extra of bad) {
      const input = { ...base, publicKey: await newKey(), ...extra };
      expect(await code(reg.register(input as Parameters<KeyRegistry["register"]>[0]))).toBe(
        "invalid",
      );
    }
    const held = await reg.register({
      role: "held",
      subject: "held:alice",
      publicKey: await newKey(),
      createdAt: T0,
    });
    expect(await reg.get(held.kid)).toEqual(held);
    expect((await reg.list("held")).map((k) => k.kid)).toEqual([held.kid]);
    expect(await reg.list()).toHaveLength(1);
  });

  it("refuses duplicates and invalid input", async () => {
    const reg = make();
    const publicKey = await newKey();
    await reg.register({ role: "worker", subject: "w", publicKey, createdAt: T0 });
    expect(
      await code(reg.register({ role: "agent", subject: "other", publicKey, createdAt: T0 })),
    ).toBe("exists");
    const bad = [
      { role: "root", subject: "x", publicKey: await newKey(), createdAt: T0 },
      { role: "agent", subject: "", publicKey: await newKey(), createdAt: T0 },
      { role: "agent", subject: "x", publicKey: new Uint8Array(31), createdAt: T0 },
      { role: "agent", subject: "x", publicKey: await newKey(), createdAt: Number.NaN },
      { role: "agent", subject: "x", publicKey: await newKey(), createdAt: T0, expiresAt: T0 },
    ];
    for (const input of bad) {
      expect(await code(reg.register(input as Parameters<KeyRegistry["register"]>[0]))).toBe(
        "invalid",
      );
    }
    expect(await reg.list()).toHaveLength(1);
  });

  it("lists oldest first, optionally by role", async () => {
    const reg = make();
    const a = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await newKey(),
      createdAt: T0 + 2,
    });
    const w = await reg.register({
      role: "worker",
      subject: "w",
      publicKey: await newKey(),
      createdAt: T0 + 1,
    });
    const b = await reg.register({
      role: "agent",
      subject: "b",
      publicKey: await newKey(),
      createdAt: T0 + 3,
    });
    expect((await reg.list()).map((r) => r.kid)).toEqual([w.kid, a.kid, b.kid]);
    expect((await reg.list("agent")).map((r) => r.kid)).toEqual([a.kid, b.kid]);
    expect(await reg.list("auditor")).toEqual([]);
  });

  it("rotates: the old key verifies what it signed before, but serves no new request", async () => {
    const reg = make();
    const old = await reg.register({
      role: "service",
      subject: "api",
      publicKey: await newKey(),
      createdAt: T0,
      expiresAt: T0 + 90 * DAY,
    });
    const rotateAt = T0 + 10 * DAY;
    const next = await reg.rotate(old.kid, await newKey(), rotateAt);
    expect(next).toMatchObject({
      role: "service",
      subject: "api",
      status: "active",
      rotatedFrom: old.kid,
    });
    expect(next.createdAt).toBe(rotateAt);
    expect(next.expiresAt).toBe(rotateAt + 90 * DAY); // the interval starts again
    const retired = (await reg.get(old.kid))!;
    expect(retired).toMatchObject({ status: "rotated", rotatedAt: rotateAt, rotatedTo: next.kid });
    expect(validAt(retired, rotateAt - 1)).toBe(true);
    expect(validAt(retired, rotateAt)).toBe(false);
    expect(usableForNewRequest(retired, rotateAt + 1)).toBe(false);
    expect(usableForNewRequest(next, rotateAt + 1)).toBe(true);
    expect(keyAuditEvent("key.rotated", next)).toMatchObject({
      kid: next.kid,
      previousKid: old.kid,
      at: rotateAt,
    });
    // A rotated key cannot be rotated again.
    expect(await code(reg.rotate(old.kid, await newKey(), rotateAt + 1))).toBe("not_active");
    expect(await code(reg.rotate("unknown", await newKey(), rotateAt))).toBe("not_found");
  });

  it("refuses to rotate onto a key that is already registered, leaving both untouched", async () => {
    const reg = make();
    const a = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await newKey(),
      createdAt: T0,
    });
    const b = await reg.register({
      role: "agent",
      subject: "b",
      publicKey: await newKey(),
      createdAt: T0,
    });
    expect(await code(reg.rotate(a.kid, b.publicKey, T0 + 1))).toBe("exists");
    expect(await code(reg.rotate(a.kid, a.publicKey, T0 + 1))).toBe("exists");
    expect(await reg.get(a.kid)).toEqual(a);
    expect(await reg.get(b.kid)).toEqual(b);
  });

  it("lets exactly one of two concurrent rotations of one key win", async () => {
    const reg = make();
    const k = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await newKey(),
      createdAt: T0,
    });
    const results = await Promise.allSettled([
      reg.rotate(k.kid, await newKey(), T0 + 5),
      reg.rotate(k.kid, await newKey(), T0 + 5),
    ]);
    const won = results.filter(
      (r) => r.status === "fulfilled",
    ) as PromiseFulfilledResult<KeyRecord>[];
    expect(won).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect((lost.reason as KeyRegistryError).code).toBe("not_active");
    expect((await reg.get(k.kid))!.rotatedTo).toBe(won[0]!.value.kid);
    expect(await reg.list("agent")).toHaveLength(2);
  });

  it("revokes: signatures before revocation stay valid, nothing after; revoking twice fails", async () => {
    const reg = make();
    const k = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await newKey(),
      createdAt: T0,
    });
    const r = await reg.revoke(k.kid, T0 + 100, { reason: "compromised" });
    expect(r).toMatchObject({
      status: "revoked",
      revokedAt: T0 + 100,
      revocationReason: "compromised",
    });
    expect(await reg.get(k.kid)).toEqual(r);
    expect(validAt(r, T0 + 99)).toBe(true);
    expect(validAt(r, T0 + 100)).toBe(false);
    expect(usableForNewRequest(r, T0 + 50)).toBe(false);
    expect(keyAuditEvent("key.revoked", r)).toMatchObject({
      type: "key.revoked",
      at: T0 + 100,
      reason: "compromised",
    });
    expect(await code(reg.revoke(k.kid, T0 + 200))).toBe("already_revoked");
    expect(await code(reg.rotate(k.kid, await newKey(), T0 + 200))).toBe("not_active");
    expect(await code(reg.revoke("unknown", T0))).toBe("not_found");
  });

  it("revokes a rotated-out key retroactively (compromise discovered later)", async () => {
    const reg = make();
    const k = await reg.register({
      role: "worker",
      subject: "w",
      publicKey: await newKey(),
      createdAt: T0,
    });
    await reg.rotate(k.kid, await newKey(), T0 + 1000);
    const r = await reg.revoke(k.kid, T0 + 5000, { effectiveAt: T0 + 400 });
    expect(r).toMatchObject({ status: "revoked", revokedAt: T0 + 400, rotatedAt: T0 + 1000 });
    expect(validAt(r, T0 + 399)).toBe(true);
    expect(validAt(r, T0 + 400)).toBe(false);
    expect(
      await code(reg.revoke((await reg.list())[1]!.kid, T0 + 10, { effectiveAt: T0 + 11 })),
    ).toBe("invalid");
  });

  it("returns copies: mutating a returned record changes nothing stored", async () => {
    const reg = make();
    const k = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await newKey(),
      createdAt: T0,
    });
    const got = (await reg.get(k.kid))!;
    got.status = "revoked";
    got.publicKey[0] = got.publicKey[0]! ^ 1;
    expect(await reg.get(k.kid)).toEqual(k);
  });
});

describe("RedisKeyRegistry does not trust what Redis returns", () => {
  it("rejects a record whose public key was swapped, and malformed JSON", async () => {
    const p = `${prefix}tamper:`;
    const reg = new RedisKeyRegistry(redis, p);
    const k = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await newKey(),
      createdAt: T0,
    });
    const raw = JSON.parse((await redis.get(`${p}key:${k.kid}`))!);
    const other = await newKey();
    raw.publicKey = Buffer.from(other).toString("base64url");
    await redis.set(`${p}key:${k.kid}`, JSON.stringify(raw));
    expect(await code(reg.get(k.kid))).toBe("invalid");
    expect(await code(reg.list())).toBe("invalid");
    await redis.set(`${p}key:${k.kid}`, "{not json");
    expect(await code(reg.get(k.kid))).toBe("invalid");
    expect(await code(reg.revoke(k.kid, T0 + 1))).toBe("invalid");
  });
});
