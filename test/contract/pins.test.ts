// One contract for the TOFU pin store port, run against every adapter (memory, Redis).
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisPinStore } from "../../functions/node/stores/pins-redis";
import { MemoryPinStore, type PinRecord, type PinStore } from "../../shared/schemapin/pins";
import { disposeWorkerd, freshName, remotePort, workerd } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const FP_A = `sha256:${"a".repeat(64)}`;
const FP_B = `sha256:${"b".repeat(64)}`;

function record(over: Partial<PinRecord> = {}): PinRecord {
  return {
    domain: "tools.example",
    toolId: "calc",
    status: "first_use",
    fingerprint: FP_A,
    publicKeyPem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    algorithm: "ES256",
    source: "observed",
    firstSeenAt: 1_000,
    pinnedAt: null,
    expiresAt: 2_000,
    ...over,
  };
}

interface Adapter {
  name: string;
  make(): Promise<PinStore>;
  /** Writes raw bytes where a record lives, to test corrupt data handling. */
  corrupt(domain: string, field: string, value: string): Promise<void>;
  done(): Promise<void>;
}

const memoryAdapter = (): Adapter => {
  let store: MemoryPinStore;
  return {
    name: "memory",
    make: async () => (store = new MemoryPinStore()),
    corrupt: async (domain, field, value) => {
      // Reach the private map: the memory adapter stores strings exactly like Redis does.
      const domains = (store as unknown as { domains: Map<string, Map<string, string>> }).domains;
      const m = domains.get(domain) ?? new Map<string, string>();
      m.set(field, value);
      domains.set(domain, m);
    },
    done: async () => {},
  };
};

const redisAdapter = (): Adapter => {
  let redis: Redis;
  const prefix = testPrefix("pins");
  let n = 0;
  return {
    name: "redis",
    make: async () => {
      redis ??= connectRedis();
      return new RedisPinStore(redis, `${prefix}${n++}:`);
    },
    corrupt: async (domain, field, value) => {
      await redis.hset(`${prefix}${n - 1}:pins:${domain}`, field, value);
    },
    done: async () => {
      if (!redis) return;
      await dropPrefix(redis, prefix);
      redis.disconnect();
    },
  };
};

const durableObjectAdapter = (): Adapter => {
  let name = "";
  return {
    name: "durable-object",
    make: async () => {
      name = freshName("pins");
      return remotePort<PinStore>("pins", name);
    },
    corrupt: async (domain, field, value) => {
      // One PinsObject per domain, named `${name}:${domain}` by the adapter.
      await (await workerd()).call({
        port: "pins-hook",
        name: `${name}:${domain}`,
        method: "corrupt",
        args: [field, value],
      });
    },
    done: disposeWorkerd,
  };
};

const all = [memoryAdapter(), redisAdapter(), durableObjectAdapter()];

describe.each(all)("PinStore contract: $name", (adapter) => {
  let store: PinStore;
  beforeAll(async () => {
    store = await adapter.make();
  });
  afterAll(() => adapter.done());

  const fresh = async () => {
    store = await adapter.make();
    return store;
  };

  it("get on an empty store is null and list is empty", async () => {
    const s = await fresh();
    expect(await s.get("tools.example", "calc")).toBeNull();
    expect(await s.list("tools.example")).toEqual([]);
  });

  it("compareAndSwap from absent creates, and refuses when something is there", async () => {
    const s = await fresh();
    expect(await s.compareAndSwap("tools.example", "calc", null, record())).toBe(true);
    expect(await s.get("tools.example", "calc")).toEqual(record());
    expect(
      await s.compareAndSwap("tools.example", "calc", null, record({ fingerprint: FP_B })),
    ).toBe(false);
    expect((await s.get("tools.example", "calc"))?.fingerprint).toBe(FP_A);
  });

  it("compareAndSwap replaces only the expected record", async () => {
    const s = await fresh();
    const a = record();
    const pinned = record({ status: "pinned", source: "admin", pinnedAt: 1_500, expiresAt: null });
    await s.compareAndSwap("tools.example", "calc", null, a);
    expect(
      await s.compareAndSwap("tools.example", "calc", record({ firstSeenAt: 999 }), pinned),
    ).toBe(false);
    expect(await s.compareAndSwap("tools.example", "calc", a, pinned)).toBe(true);
    expect(await s.get("tools.example", "calc")).toEqual(pinned);
    // Stale expectation (the old first_use) no longer matches.
    expect(await s.compareAndSwap("tools.example", "calc", a, null)).toBe(false);
    expect(await s.compareAndSwap("tools.example", "calc", pinned, null)).toBe(true);
    expect(await s.get("tools.example", "calc")).toBeNull();
  });

  it("keeps tool pins, the domain-wide pin and other domains apart", async () => {
    const s = await fresh();
    const domainWide = record({
      toolId: null,
      status: "pinned",
      source: "admin",
      pinnedAt: 5,
      expiresAt: null,
    });
    await s.compareAndSwap("tools.example", "calc", null, record());
    await s.compareAndSwap(
      "tools.example",
      "other",
      null,
      record({ toolId: "other", fingerprint: FP_B }),
    );
    await s.compareAndSwap("tools.example", null, null, domainWide);
    await s.compareAndSwap("else.example", "calc", null, record({ domain: "else.example" }));
    expect(await s.get("tools.example", null)).toEqual(domainWide);
    const listed = await s.list("tools.example");
    expect(listed.map((r) => r.toolId)).toEqual([null, "calc", "other"]);
    expect(await s.list("else.example")).toHaveLength(1);
  });

  it("delete removes one record and reports whether it existed", async () => {
    const s = await fresh();
    await s.compareAndSwap("tools.example", "calc", null, record());
    expect(await s.delete("tools.example", "calc")).toBe(true);
    expect(await s.delete("tools.example", "calc")).toBe(false);
    expect(await s.get("tools.example", "calc")).toBeNull();
  });

  it("exactly one of many concurrent creators wins", async () => {
    const s = await fresh();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        s.compareAndSwap("tools.example", "race", null, record({ toolId: "race", firstSeenAt: i })),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    const winner = results.indexOf(true);
    expect((await s.get("tools.example", "race"))?.firstSeenAt).toBe(winner);
  });

  it("a corrupt stored record is an error, not an absent pin", async () => {
    const s = await fresh();
    await adapter.corrupt("tools.example", "calc", "{not json");
    await expect(s.get("tools.example", "calc")).rejects.toThrow(/corrupt/);
    await adapter.corrupt(
      "tools.example",
      "calc",
      JSON.stringify({ ...record(), fingerprint: "x" }),
    );
    await expect(s.get("tools.example", "calc")).rejects.toThrow(/corrupt/);
    await expect(s.list("tools.example")).rejects.toThrow(/corrupt/);
  });

  it("rejects writing an invalid record", async () => {
    const s = await fresh();
    await expect(
      s.compareAndSwap("tools.example", "calc", null, record({ fingerprint: "nope" })),
    ).rejects.toThrow();
    expect(await s.get("tools.example", "calc")).toBeNull();
  });
});
