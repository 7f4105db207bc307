// One contract for every IncidentStore adapter (memory, Redis with Lua, the Durable Object under
// workerd): the detection cursor advances by compare-and-set together with the incidents it
// opens, records change by revision, evidence is write-once, emergency mode is compare-and-set.
import { afterAll, describe, expect, it } from "vitest";
import { RedisIncidentStore } from "../../functions/node/stores/incidents-redis";
import { uuidV7 } from "../../shared/crypto";
import {
  type Emergency,
  type Finding,
  type IncidentStore,
  MemoryIncidentStore,
  moveIncident,
  openIncident,
} from "../../shared/incidents";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("incidents");
let n = 0;
const macKey = new Uint8Array(32).fill(9);

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => IncidentStore][] = [
  ["memory", () => new MemoryIncidentStore()],
  ["redis", () => new RedisIncidentStore(redis, `${prefix}${n++}:`, { macKey })],
  ["durable-object", () => remotePort<IncidentStore>("incidents", freshName("incidents"))],
];

function incident(over: Partial<Finding> = {}) {
  return openIncident(
    {
      kind: "open",
      incidentId: uuidV7(),
      detector: "replay",
      category: "authentication",
      severity: "high",
      subject: { kind: "key", id: "kid-1" },
      jobs: [],
      eventIndexes: [3],
      at: "2026-12-05T12:00:00.000Z",
      ...over,
    },
    "v1",
  );
}

const emergency: Emergency = {
  active: true,
  incidentId: null,
  scope: "jobs",
  since: "2026-12-05T12:00:00.000Z",
  by: "incident-response",
  reason: null,
};

describe.each(adapters)("IncidentStore contract: %s", (_name, make) => {
  it("starts at cursor 0; advance is a compare-and-set with the incidents it opens", async () => {
    const store = make();
    expect(await store.detection()).toEqual({ cursor: 0, state: "" });
    const a = incident();
    expect(await store.advance(0, { cursor: 5, state: '{"v":1}' }, [a])).toBe(true);
    expect(await store.detection()).toEqual({ cursor: 5, state: '{"v":1}' });
    expect(await store.get(a.incidentId)).toEqual({ rev: 1, record: a });
    // A second process that read from 0 too loses, and its incidents are not stored.
    const b = incident();
    expect(await store.advance(0, { cursor: 5, state: "{}" }, [b])).toBe(false);
    expect(await store.get(b.incidentId)).toBeUndefined();
    expect(await store.detection()).toEqual({ cursor: 5, state: '{"v":1}' });
    await expect(store.advance(5, { cursor: 4, state: "" }, [])).rejects.toThrow(RangeError);
  });

  it("advance also replaces joined records, only if their revisions still hold", async () => {
    const store = make();
    const a = incident();
    await store.advance(0, { cursor: 1, state: "" }, [a]);
    const escalated = { ...a, severity: "critical" as const };
    // A stale revision (an admin changed the record meanwhile): nothing lands, cursor included.
    expect(
      await store.advance(1, { cursor: 2, state: "" }, [], [{ rev: 2, record: escalated }]),
    ).toBe(false);
    expect(await store.detection()).toEqual({ cursor: 1, state: "" });
    const b = incident();
    expect(
      await store.advance(1, { cursor: 2, state: "" }, [b], [{ rev: 1, record: escalated }]),
    ).toBe(true);
    expect(await store.get(a.incidentId)).toEqual({ rev: 2, record: escalated });
    expect((await store.get(b.incidentId))?.rev).toBe(1);
  });

  it("of concurrent advances from one cursor exactly one lands", async () => {
    const store = make();
    const rs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.advance(0, { cursor: 10, state: String(i) }, [incident()]),
      ),
    );
    expect(rs.filter(Boolean)).toHaveLength(1);
    expect(await store.list({ limit: 100 })).toHaveLength(1);
  });

  it("swaps by revision; lists newest first; feeds every change", async () => {
    const store = make();
    const start = await store.changeCursor();
    const a = incident();
    const b = incident();
    await store.advance(0, { cursor: 1, state: "" }, [a, b]);
    const acked = moveIncident(a, "acknowledged", "admin", a.openedAt, "seen");
    expect(await store.swap(a.incidentId, 1, acked)).toBe(true);
    expect(await store.swap(a.incidentId, 1, acked)).toBe(false);
    expect((await store.get(a.incidentId))?.rev).toBe(2);
    await expect(store.swap(a.incidentId, 2, b)).rejects.toThrow(RangeError);
    const desc = [a.incidentId, b.incidentId].sort().reverse();
    const list = await store.list({ limit: 10 });
    expect(list.map((s) => s.record.incidentId)).toEqual(desc);
    expect(
      (await store.list({ limit: 10, before: desc[0] })).map((s) => s.record.incidentId),
    ).toEqual([desc[1]]);
    const ch = await store.changes(start, 10);
    expect(ch.map((c) => c.id)).toEqual([a.incidentId, b.incidentId, a.incidentId]);
    expect(await store.changes(ch.at(-1)!.cursor, 10)).toEqual([]);
    expect(await store.changeCursor()).toBe(ch.at(-1)!.cursor);
  });

  it("evidence is stored once and never replaced", async () => {
    const store = make();
    const id = uuidV7();
    expect(await store.evidence(id)).toBeUndefined();
    expect(await store.putEvidence(id, "bundle-1")).toBe(true);
    expect(await store.putEvidence(id, "bundle-2")).toBe(false);
    expect(await store.evidence(id)).toBe("bundle-1");
  });

  it("emergency mode is a compare-and-set", async () => {
    const store = make();
    expect(await store.emergency()).toEqual({ rev: 0, value: undefined });
    expect(await store.swapEmergency(0, emergency)).toBe(true);
    expect(await store.swapEmergency(0, { ...emergency, active: false })).toBe(false);
    expect(await store.emergency()).toEqual({ rev: 1, value: emergency });
  });

  it("refuses bad pages and cursors", async () => {
    const store = make();
    await expect(store.list({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(store.changes("x", 1)).rejects.toThrow(RangeError);
  });
});

describe("RedisIncidentStore: Redis is not trusted", () => {
  it("a record or cursor edited in Redis fails its MAC", async () => {
    const p = `${prefix}mac:`;
    const store = new RedisIncidentStore(redis, p, { macKey });
    const a = incident();
    await store.advance(0, { cursor: 2, state: "" }, [a]);
    const key = `${p}incidents:{i}:rec:${a.incidentId}`;
    const v = (await redis.hget(key, "v"))!;
    await redis.hset(key, "v", v.replace('"state":"open"', '"state":"false_positive"'));
    await expect(store.get(a.incidentId)).rejects.toThrow(/integrity/);
    await redis.hset(`${p}incidents:{i}:detection`, "cursor", "99");
    await expect(store.detection()).rejects.toThrow(/does not match/);
  });
});
