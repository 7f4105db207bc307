// One contract for every QuarantineStore adapter (memory, Redis with Lua, the Durable Object under
// workerd), and the service over each: one active quarantine per target, place idempotent and
// atomic (concurrent places store one record and audit once), lift once, history kept.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisQuarantineStore } from "../../functions/node/stores/quarantine-redis";
import { uuidV7 } from "../../shared/crypto";
import {
  MemoryQuarantineStore,
  type QuarantineEvent,
  type QuarantineRecord,
  QuarantineService,
  type QuarantineStore,
  type QuarantineTarget,
} from "../../shared/quarantine";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("quarantine");
let n = 0;

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => QuarantineStore][] = [
  ["memory", () => new MemoryQuarantineStore()],
  ["redis", () => new RedisQuarantineStore(redis, `${prefix}${n++}:`)],
  ["durable-object", () => remotePort<QuarantineStore>("quarantine", freshName("quarantine"))],
];

function rec(target: QuarantineTarget, over: Partial<QuarantineRecord> = {}): QuarantineRecord {
  return {
    id: uuidV7(),
    target,
    reason: "replayed requests",
    placedBy: "admin-1",
    placedAt: new Date().toISOString(),
    ...over,
  };
}

const lift = { by: "admin-2", at: new Date().toISOString(), reason: "false positive" };

describe.each(adapters)("QuarantineStore contract: %s", (_name, make) => {
  let store: QuarantineStore;
  beforeAll(() => {
    store = make();
  });

  it("places, reads back, and reports the target's active quarantine", async () => {
    const t: QuarantineTarget = { kind: "subject", subject: "agent-a" };
    const r = rec(t, { incidentId: "inc-1" });
    expect(await store.place(r)).toEqual({ placed: true, record: r });
    expect(await store.get(r.id)).toEqual(r);
    expect(await store.active(t)).toEqual(r);
    expect(await store.active({ kind: "key", kid: "agent-a" })).toBeUndefined();
    expect(await store.active({ kind: "subject", subject: "agent-b" })).toBeUndefined();
    expect(await store.get(uuidV7())).toBeUndefined();
  });

  it("a second place of a target in force stores nothing and returns the record in force", async () => {
    const t: QuarantineTarget = { kind: "key", kid: "kid-2" };
    const a = rec(t);
    const b = rec(t, { reason: "another reason" });
    await store.place(a);
    expect(await store.place(b)).toEqual({ placed: false, record: a });
    expect(await store.get(b.id)).toBeUndefined();
  });

  it("concurrent places of one target: exactly one record", async () => {
    const t: QuarantineTarget = { kind: "worker", workerId: "worker-3" };
    const tries = Array.from({ length: 10 }, () => rec(t));
    const out = await Promise.all(tries.map((r) => store.place(r)));
    expect(out.filter((o) => o.placed)).toHaveLength(1);
    const winner = out.find((o) => o.placed)!.record;
    for (const o of out) expect(o.record).toEqual(winner);
    expect(await store.active(t)).toEqual(winner);
  });

  it("lifts once; a lifted target can be quarantined again, and the history stays", async () => {
    const t: QuarantineTarget = { kind: "subject", subject: "agent-4" };
    const r = rec(t);
    await store.place(r);
    const first = await store.lift(r.id, lift);
    expect(first).toEqual({
      lifted: true,
      record: { ...r, liftedAt: lift.at, liftedBy: lift.by, liftReason: lift.reason },
    });
    expect(await store.active(t)).toBeUndefined();
    expect(await store.lift(r.id, { ...lift, by: "admin-3" })).toEqual({
      lifted: false,
      record: first!.record,
    });
    expect(await store.lift(uuidV7(), lift)).toBeUndefined();
    const again = rec(t);
    expect((await store.place(again)).placed).toBe(true);
    expect(await store.active(t)).toEqual(again);
    expect(await store.get(r.id)).toEqual(first!.record);
  });

  it("concurrent lifts: exactly one lifts", async () => {
    const r = rec({ kind: "key", kid: "kid-5" });
    await store.place(r);
    const out = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.lift(r.id, { ...lift, by: `admin-${i}` })),
    );
    expect(out.filter((o) => o?.lifted)).toHaveLength(1);
  });

  it("refuses records that break the schema: ill-formed Unicode, a lifted new record", async () => {
    await expect(
      store.place(rec({ kind: "subject", subject: "a" }, { reason: "x\uD800y" })),
    ).rejects.toThrow();
    await expect(store.place(rec({ kind: "subject", subject: "b\uDC00" }))).rejects.toThrow();
    await expect(
      store.place(rec({ kind: "subject", subject: "c" }, { liftedAt: new Date().toISOString() })),
    ).rejects.toThrow();
    expect(await store.active({ kind: "subject", subject: "a" })).toBeUndefined();
  });

  it("lists newest first, in pages", async () => {
    const s = make();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = rec({ kind: "subject", subject: `list-${i}` });
      await s.place(r);
      ids.push(r.id);
    }
    const order = [...ids].sort().reverse();
    const first = await s.list({ limit: 3 });
    expect(first.map((r) => r.id)).toEqual(order.slice(0, 3));
    const rest = await s.list({ limit: 3, before: first[2]!.id });
    expect(rest.map((r) => r.id)).toEqual(order.slice(3));
    await expect(s.list({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(s.list({ limit: 10_000 })).rejects.toThrow(RangeError);
  });

  it("the service: two services placing one target at once audit and act once", async () => {
    const events: QuarantineEvent[] = [];
    const placed: QuarantineRecord[] = [];
    const svc = () =>
      new QuarantineService({
        store,
        newId: uuidV7,
        onEvent: async (e) => {
          events.push(e);
        },
        onPlaced: async (r) => {
          placed.push(r);
        },
      });
    const [a, b] = [svc(), svc()];
    const input = {
      target: { kind: "subject", subject: "svc-6" } as const,
      reason: "incident",
      incidentId: "inc-6",
      by: "incident-response",
    };
    const [ra, rb] = await Promise.all([a.place(input), b.place(input)]);
    expect(ra).toEqual(rb);
    expect(events.map((e) => e.type)).toEqual(["quarantine.placed"]);
    expect(placed).toEqual([ra]);
    expect(await a.forRequest({ kid: "any", subject: "svc-6" })).toEqual(ra);
    expect(await a.forRequest({ kid: "any", subject: null })).toBeUndefined();
    const lifts = await Promise.all([a.lift(ra.id, "admin", "ok"), b.lift(ra.id, "admin", "ok")]);
    expect(lifts.filter((l) => l.ok && l.lifted)).toHaveLength(1);
    expect(events.map((e) => e.type)).toEqual(["quarantine.placed", "quarantine.lifted"]);
    expect(await a.forRequest({ kid: "any", subject: "svc-6" })).toBeUndefined();
    expect(await a.lift(uuidV7(), "admin", "x")).toEqual({ ok: false, code: "not-found" });
  });
});
