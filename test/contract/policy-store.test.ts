// One contract for every PolicyStorePort adapter: memory and Redis behave the same.
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisPolicyStore } from "../../functions/node/stores/policy-redis";
import { sha256Hex } from "../../shared/encoding";
import { MemoryPolicyStore, PolicyEngine, type PolicyStorePort } from "../../shared/policy";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const v = (source: string, createdAt = "2026-01-01T00:00:00.000Z") => ({
  source,
  sha256: sha256Hex(source),
  createdAt,
});

function contract(label: string, make: () => PolicyStorePort) {
  describe(`policy store contract: ${label}`, () => {
    it("put appends versions and makes the newest current", async () => {
      const s = make();
      expect(await s.revision()).toBe(0);
      expect(await s.put("a", v("one"))).toBe(1);
      expect(await s.put("a", v("two"))).toBe(2);
      expect(await s.put("b", v("bee"))).toBe(1);
      expect(await s.get("a")).toEqual({ name: "a", version: 2, ...v("two") });
      expect(await s.get("a", 1)).toEqual({ name: "a", version: 1, ...v("one") });
      expect(await s.get("a", 3)).toBeNull();
      expect(await s.get("zz")).toBeNull();
      expect(await s.revision()).toBe(3);
      const snap = await s.snapshot();
      expect(snap.revision).toBe(3);
      expect(snap.documents.map((d) => [d.name, d.version, d.source])).toEqual([
        ["a", 2, "two"],
        ["b", 1, "bee"],
      ]);
    });

    it("versions lists every version with the current one marked", async () => {
      const s = make();
      await s.put("a", v("one", "2026-01-01T00:00:00.000Z"));
      await s.put("a", v("two", "2026-01-02T00:00:00.000Z"));
      expect(await s.versions("a")).toEqual([
        {
          version: 1,
          sha256: sha256Hex("one"),
          createdAt: "2026-01-01T00:00:00.000Z",
          current: false,
        },
        {
          version: 2,
          sha256: sha256Hex("two"),
          createdAt: "2026-01-02T00:00:00.000Z",
          current: true,
        },
      ]);
      expect(await s.versions("never")).toEqual([]);
    });

    it("setCurrent (rollback) moves the pointer; unknown versions change nothing", async () => {
      const s = make();
      await s.put("a", v("one"));
      await s.put("a", v("two"));
      const rev = await s.revision();
      expect(await s.setCurrent("a", 1)).toBe(true);
      expect((await s.get("a"))?.source).toBe("one");
      expect(await s.revision()).toBe(rev + 1);
      expect(await s.setCurrent("a", 9)).toBe(false);
      expect(await s.setCurrent("a", 0)).toBe(false);
      expect(await s.setCurrent("nope", 1)).toBe(false);
      expect(await s.revision()).toBe(rev + 1);
      expect((await s.get("a"))?.version).toBe(1);
      // A put after a rollback continues the count.
      expect(await s.put("a", v("three"))).toBe(3);
    });

    it("delete deactivates but keeps history; a later put continues the count", async () => {
      const s = make();
      await s.put("a", v("one"));
      expect(await s.delete("a")).toBe(true);
      expect(await s.delete("a")).toBe(false);
      expect(await s.get("a")).toBeNull();
      expect((await s.get("a", 1))?.source).toBe("one");
      expect((await s.snapshot()).documents).toEqual([]);
      expect((await s.versions("a")).map((x) => x.current)).toEqual([false]);
      expect(await s.put("a", v("again"))).toBe(2);
      expect(await s.setCurrent("a", 1)).toBe(true);
    });

    it("concurrent puts get distinct versions", async () => {
      const s = make();
      const vs = await Promise.all(Array.from({ length: 20 }, (_, i) => s.put("c", v(`v${i}`))));
      expect([...vs].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await s.revision()).toBe(20);
    });

    it("rejects names that are not valid keys", async () => {
      const s = make();
      await expect(s.put("bad name", v("x"))).rejects.toThrow(/invalid policy name/);
      await expect(s.get("a:b")).rejects.toThrow(/invalid policy name/);
    });

    it("keeps sources byte-exact (unicode, newlines)", async () => {
      const s = make();
      const src = 'policy p {\n  allow: x if a == "é😀\\n"\n}\r\n';
      await s.put("u", v(src));
      expect((await s.get("u"))?.source).toBe(src);
    });

    it("serves an engine end to end", async () => {
      const store = make();
      const engine = await PolicyEngine.create({ store, cache: false });
      const r = await engine.put("doc", "policy p { allow: go }");
      expect(r).toMatchObject({ ok: true, version: 1 });
      expect(engine.evaluate({ action: "go", context: {} }).decision).toBe("allow");
      // A second engine on the same store sees the same set.
      const other = await PolicyEngine.create({ store, cache: false });
      expect(other.policySetVersion).toBe(engine.policySetVersion);
      await engine.put("doc", "policy p { deny: go }");
      expect(other.evaluate({ action: "go", context: {} }).decision).toBe("allow");
      await other.reload();
      expect(other.evaluate({ action: "go", context: {} }).decision).toBe("deny");
    });
  });
}

contract("memory", () => new MemoryPolicyStore());

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => {
  redis = connectRedis();
});
afterAll(async () => {
  for (const p of prefixes) await dropPrefix(redis, p);
  redis.disconnect();
});
contract("redis", () => {
  const p = testPrefix("policy-store");
  prefixes.push(p);
  return new RedisPolicyStore(redis, p);
});

// The DO adapter inside workerd (Miniflare), one fresh PolicyObject per instance.
contract("durable-object", () => remotePort<PolicyStorePort>("policy", freshName("policy")));
afterAll(disposeWorkerd);

describe("redis adapter: untrusted contents", () => {
  it("a tampered record makes the engine fail closed", async () => {
    const p = testPrefix("policy-tamper");
    prefixes.push(p);
    const store = new RedisPolicyStore(redis, p);
    const engine = await PolicyEngine.create({ store, cache: false });
    await engine.put("doc", "policy p { allow: go }");
    const raw = JSON.parse((await redis.hget(`${p}v:doc`, "1"))!);
    raw.source = "policy p { allow: go } policy q { allow: everything }";
    await redis.hset(`${p}v:doc`, "1", JSON.stringify(raw));
    await redis.incr(`${p}rev`);
    await expect(engine.reload()).rejects.toThrow(/does not match its sha256/);
    const d = engine.evaluate({ action: "go", context: {} });
    expect(d.decision).toBe("deny");
    expect(d.reason).toMatch(/stored policy invalid/);
  });

  it("a malformed record is rejected", async () => {
    const p = testPrefix("policy-malformed");
    prefixes.push(p);
    const store = new RedisPolicyStore(redis, p);
    await redis.hset(`${p}cur`, "doc", "1");
    await redis.hset(`${p}v:doc`, "1", '{"source": 1}');
    await expect(store.snapshot()).rejects.toThrow(/malformed/);
  });
});
