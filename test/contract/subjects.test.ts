// One contract for every SubjectKeyStore adapter (memory, Redis with Lua, the KeysObject Durable
// Object under workerd), and the SubjectVault over each (docs/data-subjects.md): one key per
// subject even under concurrent creates, erasure destroys it and leaves a tombstone that no create
// can undo, sealed fields open before erasure and read "[erased]" after, malformed input refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisSubjectKeyStore } from "../../functions/node/stores/subjects-redis";
import { randomBytes } from "../../shared/crypto";
import { toBase64Url, toHex } from "../../shared/encoding";
import {
  type ActiveSubject,
  ERASED,
  MemorySubjectKeyStore,
  SEALED_PREFIX,
  type SubjectKeyStore,
  SubjectVault,
} from "../../shared/subjects";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("subjects");
let n = 0;

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => SubjectKeyStore][] = [
  ["memory", () => new MemorySubjectKeyStore()],
  ["redis", () => new RedisSubjectKeyStore(redis, `${prefix}${n++}:`)],
  ["durable-object", () => remotePort<SubjectKeyStore>("subjects", freshName("subjects"))],
];

const hash = () => toHex(randomBytes(32));
const candidate = (): ActiveSubject => ({
  state: "active",
  ref: toBase64Url(randomBytes(16)),
  wrappedKey: toBase64Url(randomBytes(60)),
  createdAt: new Date().toISOString(),
});
const at = "2026-12-06T01:00:00.000Z";

describe.each(adapters)("SubjectKeyStore contract: %s", (_name, make) => {
  let store: SubjectKeyStore;
  beforeAll(() => {
    store = make();
  });

  it("creates once, reads back by hash and by ref", async () => {
    const h = hash();
    const c = candidate();
    expect(await store.get(h)).toBeUndefined();
    expect(await store.createOrGet(h, c)).toEqual(c);
    expect(await store.createOrGet(h, candidate())).toEqual(c);
    expect(await store.get(h)).toEqual(c);
    expect(await store.wrappedKey(c.ref)).toBe(c.wrappedKey);
    expect(await store.wrappedKey(candidate().ref)).toBeUndefined();
  });

  it("concurrent creates of one subject store exactly one key", async () => {
    const h = hash();
    const tries = Array.from({ length: 10 }, candidate);
    const out = await Promise.all(tries.map((c) => store.createOrGet(h, c)));
    for (const o of out) expect(o).toEqual(out[0]);
    const stored = await Promise.all(tries.map((c) => store.wrappedKey(c.ref)));
    expect(stored.filter((w) => w !== undefined)).toHaveLength(1);
  });

  it("erase destroys the key and leaves a tombstone that a create cannot undo", async () => {
    const h = hash();
    const c = candidate();
    await store.createOrGet(h, c);
    expect(await store.erase(h, at)).toEqual(c);
    expect(await store.wrappedKey(c.ref)).toBeUndefined();
    expect(await store.get(h)).toEqual({ state: "erased", erasedAt: at });
    expect(await store.createOrGet(h, candidate())).toEqual({ state: "erased", erasedAt: at });
    // A second erasure keeps the first tombstone.
    expect(await store.erase(h, "2027-01-01T00:00:00.000Z")).toEqual({
      state: "erased",
      erasedAt: at,
    });
  });

  it("erasing a subject never seen leaves a tombstone", async () => {
    const h = hash();
    expect(await store.erase(h, at)).toBeUndefined();
    const c = candidate();
    expect((await store.createOrGet(h, c)).state).toBe("erased");
    expect(await store.wrappedKey(c.ref)).toBeUndefined();
  });

  it("an erasure racing creates: the subject ends erased with no key stored", async () => {
    const h = hash();
    const tries = Array.from({ length: 6 }, candidate);
    await Promise.all([
      ...tries.map((c) => store.createOrGet(h, c)),
      store.erase(h, at),
      ...tries.slice(3).map((c) => store.createOrGet(h, c)),
    ]);
    expect((await store.get(h))?.state).toBe("erased");
    for (const c of tries) expect(await store.wrappedKey(c.ref)).toBeUndefined();
  });

  it("refuses malformed hashes, refs, records and instants", async () => {
    await expect(store.get("ABC")).rejects.toThrow();
    await expect(store.get(`${hash()}\uD800`)).rejects.toThrow();
    await expect(store.wrappedKey("short")).rejects.toThrow();
    await expect(store.createOrGet(hash(), { ...candidate(), wrappedKey: "x" })).rejects.toThrow();
    await expect(
      store.createOrGet(hash(), { ...candidate(), ref: "a\uDC00".padEnd(22, "a") }),
    ).rejects.toThrow();
    await expect(store.erase(hash(), "yesterday")).rejects.toThrow();
  });

  it("the vault over it: sealed before erasure, [erased] after, nothing collected again", async () => {
    const vault = new SubjectVault({ store, secret: "s3cret", personalFields: ["email"] });
    const details = await vault.seal({ subject: "alice@example.com", email: "a@x", n: 1 });
    expect(details.n).toBe(1);
    expect(String(details.subject).startsWith(SEALED_PREFIX)).toBe(true);
    expect(JSON.stringify(details)).not.toContain("alice");
    expect(JSON.stringify(details)).not.toContain("a@x");
    expect((await vault.reveal({ details })).details).toEqual({
      subject: "alice@example.com",
      email: "a@x",
      n: 1,
    });
    expect(await vault.erase("alice@example.com")).toBe("active");
    expect((await vault.reveal({ details })).details).toEqual({
      subject: ERASED,
      email: ERASED,
      n: 1,
    });
    expect(await vault.seal({ subject: "alice@example.com", email: "b@x" })).toEqual({
      subject: ERASED,
      email: ERASED,
    });
    expect(await vault.erase("alice@example.com")).toBe("erased");
    expect(await vault.erase("nobody")).toBe("unknown");
    // An erasure by another process (another vault over the same store) counts at once, although
    // this vault has the key unwrapped already.
    const other = new SubjectVault({ store, secret: "s3cret", personalFields: ["email"] });
    const carol = await vault.seal({ subject: "carol", email: "c@x" });
    expect((await vault.reveal({ details: carol })).details.email).toBe("c@x");
    expect(await other.erase("carol")).toBe("active");
    expect((await vault.reveal({ details: carol })).details).toEqual({
      subject: ERASED,
      email: ERASED,
    });
    expect(await vault.seal({ subject: "carol" })).toEqual({ subject: ERASED });
    // Another subject is untouched.
    const bob = await vault.seal({ subject: "bob" });
    expect((await vault.reveal({ details: bob })).details).toEqual({ subject: "bob" });
  });
});
