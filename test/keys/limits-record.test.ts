// The optional `limits` of a key record (docs/governance.md "Quotas") on every KeyRegistry adapter:
// stored, read back, carried over on rotation, validated; and on Redis covered by the record's
// HMAC, so raising a key's quota by writing to Redis is refused like any other edit.
import { afterAll, describe, expect, it } from "vitest";
import { RedisKeyRegistry } from "../../functions/node/stores/keys-redis";
import { generateEd25519KeyPair } from "../../shared/crypto";
import {
  type KeyRegistry,
  KeyRegistryError,
  keyAuditEvent,
  MemoryKeyRegistry,
} from "../../shared/keys";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { redisForFile } from "../support/redis";

const { redis, prefix } = redisForFile("key-limits");
const macKey = new Uint8Array(32).fill(9);
let n = 0;
afterAll(async () => disposeWorkerd());

const adapters: [string, () => KeyRegistry][] = [
  ["memory", () => new MemoryKeyRegistry()],
  ["redis", () => new RedisKeyRegistry(redis, `${prefix}${n++}:`, { macKey })],
  ["durable-object", () => remotePort<KeyRegistry>("keys", freshName("keys"))],
];
const T0 = 1_750_000_000_000;
const pk = async () => (await generateEd25519KeyPair()).publicKey;

describe.each(adapters)("key record limits: %s", (_name, make) => {
  it("are stored, read back, named in key.created and kept by a rotation", async () => {
    const reg = make();
    const limits = { requestsPerSecond: 2.5, queuedJobs: 3 };
    const r = await reg.register({
      role: "agent",
      subject: "a",
      publicKey: await pk(),
      createdAt: T0,
      limits,
    });
    expect(r.limits).toEqual(limits);
    expect((await reg.get(r.kid))?.limits).toEqual(limits);
    expect(keyAuditEvent("key.created", r).limits).toEqual(limits);
    const next = await reg.rotate(r.kid, await pk(), T0 + 1);
    expect(next.limits).toEqual(limits);
    // A key without limits has none (not an empty object).
    const plain = await reg.register({
      role: "agent",
      subject: "b",
      publicKey: await pk(),
      createdAt: T0,
    });
    expect((await reg.get(plain.kid))?.limits).toBeUndefined();
  });

  it("invalid limits are refused and nothing is registered", async () => {
    const reg = make();
    for (const limits of [
      { requestsPerSecond: 0 },
      { evaluationsPerSecond: -3 },
      { runningJobs: 5000 },
      { queuedJobs: 0.5 },
      { other: 1 },
    ]) {
      const publicKey = await pk();
      const e = await reg
        .register({
          role: "agent",
          subject: "c",
          publicKey,
          createdAt: T0,
          limits,
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(e).toBeInstanceOf(KeyRegistryError);
      expect((e as KeyRegistryError).code).toBe("invalid");
    }
  });
});

describe("RedisKeyRegistry: limits are under the record's MAC", () => {
  it("a quota raised by writing to Redis makes the record fail its integrity check", async () => {
    const reg = new RedisKeyRegistry(redis, `${prefix}mac:`, { macKey });
    const r = await reg.register({
      role: "agent",
      subject: "d",
      publicKey: await pk(),
      createdAt: T0,
      limits: { requestsPerSecond: 1 },
    });
    const key = `${prefix}mac:key:${r.kid}`;
    const stored = JSON.parse((await redis.get(key))!) as {
      record: { limits?: Record<string, number> };
      mac: string;
    };
    stored.record.limits = { requestsPerSecond: 1_000_000 };
    await redis.set(key, JSON.stringify(stored));
    const e = await reg.get(r.kid).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((e as KeyRegistryError).code).toBe("invalid");
  });
});
