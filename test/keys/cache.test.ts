// The key cache in front of the registry: a revocation through this node applies at once, through
// another node as soon as its announcement arrives, and within ttlMs if the announcement is lost;
// a lookup racing an invalidation never stores the stale record. Then the same over real Redis.
import { afterAll, describe, expect, it } from "vitest";
import { redisInvalidationBus } from "../../functions/node/stores/invalidation-redis";
import { RedisKeyRegistry } from "../../functions/node/stores/keys-redis";
import { ed25519Kid, generateEd25519KeyPair } from "../../shared/crypto";
import {
  CachingKeyRegistry,
  type KeyRecord,
  type KeyRegistry,
  MemoryKeyRegistry,
} from "../../shared/keys";
import { memoryBus } from "../support/bus";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

/** A registry that counts reads and can hold one read until released. */
class Probe implements KeyRegistry {
  reads = 0;
  gate: Promise<void> | undefined;
  constructor(readonly inner: MemoryKeyRegistry) {}
  async get(kid: string) {
    this.reads++;
    const r = await this.inner.get(kid);
    await this.gate;
    return r;
  }
  list = (...a: Parameters<KeyRegistry["list"]>) => this.inner.list(...a);
  register = (...a: Parameters<KeyRegistry["register"]>) => this.inner.register(...a);
  rotate = (...a: Parameters<KeyRegistry["rotate"]>) => this.inner.rotate(...a);
  revoke = (...a: Parameters<KeyRegistry["revoke"]>) => this.inner.revoke(...a);
}

const agent = async (reg: KeyRegistry): Promise<KeyRecord> =>
  reg.register({
    role: "agent",
    subject: "a",
    publicKey: (await generateEd25519KeyPair()).publicKey,
    createdAt: Date.now(),
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("CachingKeyRegistry", () => {
  it("serves repeat lookups from the cache, and a revocation through it at once", async () => {
    const probe = new Probe(new MemoryKeyRegistry());
    const reg = new CachingKeyRegistry(probe, { ttlMs: 60_000 });
    const r = await agent(reg);
    await reg.get(r.kid);
    await reg.get(r.kid);
    expect(probe.reads).toBe(1);
    await reg.revoke(r.kid, Date.now());
    expect((await reg.get(r.kid))?.status).toBe("revoked");
  });

  it("another node's revocation applies when its announcement arrives", async () => {
    const store = new MemoryKeyRegistry();
    const bus = memoryBus();
    const a = new CachingKeyRegistry(store, { ttlMs: 60_000, bus: bus.make() });
    const b = new CachingKeyRegistry(store, { ttlMs: 60_000, bus: bus.make() });
    const r = await agent(a);
    expect((await b.get(r.kid))?.status).toBe("active");
    await a.revoke(r.kid, Date.now());
    expect((await b.get(r.kid))?.status).toBe("revoked");
  });

  it("a lost announcement is bounded by ttlMs; a bus reset empties the cache", async () => {
    const store = new MemoryKeyRegistry();
    const bus = memoryBus();
    const a = new CachingKeyRegistry(store, { ttlMs: 60_000, bus: bus.make() });
    const b = new CachingKeyRegistry(store, { ttlMs: 50, bus: bus.make() });
    const r = await agent(a);
    await b.get(r.kid);
    bus.drop = true;
    await a.revoke(r.kid, Date.now());
    await sleep(120);
    expect((await b.get(r.kid))?.status).toBe("revoked");

    const c = new CachingKeyRegistry(store, { ttlMs: 60_000, bus: bus.make() });
    const r2 = await agent(a);
    await c.get(r2.kid);
    await a.revoke(r2.kid, Date.now()); // lost
    expect((await c.get(r2.kid))?.status).toBe("active"); // stale until...
    bus.reset(); // ...the subscriber reconnects
    expect((await c.get(r2.kid))?.status).toBe("revoked");
  });

  it("a lookup that read the record before a revocation does not cache it", async () => {
    const probe = new Probe(new MemoryKeyRegistry());
    const reg = new CachingKeyRegistry(probe, { ttlMs: 60_000 });
    const r = await agent(probe.inner);
    let release!: () => void;
    probe.gate = new Promise((res) => {
      release = res;
    });
    const racing = reg.get(r.kid); // reads "active", then waits at the gate
    await sleep(5);
    probe.gate = undefined;
    await reg.revoke(r.kid, Date.now());
    release();
    expect((await racing)?.status).toBe("active"); // it was active when read
    expect((await reg.get(r.kid))?.status).toBe("revoked"); // but that read was not kept
  });

  it("does not cache unknown keys, and ttlMs 0 turns caching off", async () => {
    const store = new MemoryKeyRegistry();
    const cached = new CachingKeyRegistry(store, { ttlMs: 60_000 });
    const { publicKey } = await generateEd25519KeyPair();
    const kid = ed25519Kid(publicKey);
    expect(await cached.get(kid)).toBeUndefined();
    await store.register({ role: "agent", subject: "x", publicKey, createdAt: Date.now() });
    expect((await cached.get(kid))?.kid).toBe(kid); // registered elsewhere: usable at once

    const probe = new Probe(store);
    const off = new CachingKeyRegistry(probe, { ttlMs: 0 });
    await off.get(kid);
    await off.get(kid);
    expect(probe.reads).toBe(2);
  });
});

describe("CachingKeyRegistry over Redis with pub/sub invalidation", () => {
  const redis = connectRedis();
  const prefix = testPrefix("keycache");
  const buses: ReturnType<typeof redisInvalidationBus>[] = [];
  afterAll(async () => {
    for (const b of buses) b.close();
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });

  it("a revocation on one node reaches another node's cache", async () => {
    const node = () => {
      const bus = redisInvalidationBus(redis, `${prefix}changed`);
      buses.push(bus);
      return new CachingKeyRegistry(new RedisKeyRegistry(redis, `${prefix}k:`), {
        ttlMs: 60_000,
        bus,
      });
    };
    const a = node();
    const b = node();
    await sleep(100); // both subscribed
    const r = await agent(a);
    expect((await b.get(r.kid))?.status).toBe("active");
    await a.revoke(r.kid, Date.now());
    let seen: string | undefined;
    for (let i = 0; i < 100 && seen !== "revoked"; i++) {
      seen = (await b.get(r.kid))?.status;
      if (seen !== "revoked") await sleep(20);
    }
    expect(seen).toBe("revoked");
  });
});
