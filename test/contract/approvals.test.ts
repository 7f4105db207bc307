// One contract for every ApprovalStore adapter (memory, Redis with Lua, the Durable Object under
// workerd), and the workflow (shared/approvals/service.ts) over each: the same rules everywhere,
// exactly one winner of two concurrent answers, expiry read off stored timestamps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisApprovalStore } from "../../functions/node/stores/approvals-redis";
import {
  type ApprovalEvent,
  type ApprovalRecord,
  ApprovalService,
  type ApprovalStore,
  type BoundRequest,
  MemoryApprovalStore,
  newApproval,
} from "../../shared/approvals";
import { uuidV7 } from "../../shared/crypto";
import { disposeWorkerd, freshName, remotePort } from "../edge/support/workerd";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";

const redis = connectRedis();
const prefix = testPrefix("approvals");
let n = 0;
const macKey = new Uint8Array(32).fill(7);

afterAll(async () => {
  await dropPrefix(redis, prefix);
  redis.disconnect();
  await disposeWorkerd();
});

const adapters: [string, () => ApprovalStore][] = [
  ["memory", () => new MemoryApprovalStore()],
  ["redis", () => new RedisApprovalStore(redis, `${prefix}${n++}:`, { macKey })],
  ["durable-object", () => remotePort<ApprovalStore>("approvals", freshName("approvals"))],
];

const TIMES = { timeoutMs: 60_000, retentionMs: 3_600_000 };

function bound(over: Partial<BoundRequest> = {}): BoundRequest {
  return {
    kid: "kid-requester",
    subject: "agent-1",
    action: "allocate",
    resource: "resources",
    tags: ["high_memory_operations"],
    contextSha256: "a".repeat(64),
    policySetVersion: "v1",
    approver: "supervisor",
    approvers: ["supervisor"],
    ...over,
  };
}

const approver = { kid: "kid-boss", subject: "boss", groups: ["supervisor"] };
const meta = { decisionId: null, policyReason: null };

describe.each(adapters)("ApprovalStore contract: %s", (_name, make) => {
  let store: ApprovalStore;
  let events: ApprovalEvent[];
  let clock: number;
  let svc: ApprovalService;
  beforeAll(() => {
    store = make();
    events = [];
    clock = Date.now();
    svc = new ApprovalService({
      store,
      times: TIMES,
      newId: uuidV7,
      now: () => clock,
      onEvent: async (e) => {
        events.push(e);
      },
    });
  });

  it("creates, reads back, and points the binding at the record", async () => {
    const r = newApproval(uuidV7(), bound({ action: "a1" }), meta, Date.now(), TIMES);
    expect(await store.create(r, null)).toEqual({ created: true });
    expect(await store.get(r.id)).toEqual({ rev: 1, record: r });
    expect(await store.byBinding(r.binding)).toBe(r.id);
    expect(await store.get(uuidV7())).toBeUndefined();
  });

  it("a second record for a live binding is not created unless it replaces the current one", async () => {
    const a = newApproval(uuidV7(), bound({ action: "a2" }), meta, Date.now(), TIMES);
    const b = newApproval(uuidV7(), bound({ action: "a2" }), meta, Date.now(), TIMES);
    expect(await store.create(a, null)).toEqual({ created: true });
    expect(await store.create(b, null)).toEqual({ created: false, current: a.id });
    expect(await store.get(b.id)).toBeUndefined();
    expect(await store.create(b, a.id)).toEqual({ created: true });
    expect(await store.byBinding(a.binding)).toBe(b.id);
  });

  it("swap is compare-and-set on the revision", async () => {
    const r = newApproval(uuidV7(), bound({ action: "a3" }), meta, Date.now(), TIMES);
    await store.create(r, null);
    const next: ApprovalRecord = { ...r, status: "denied" };
    expect(await store.swap(r.id, 2, next)).toBe(false);
    expect(await store.swap(r.id, 1, next)).toBe(true);
    expect(await store.swap(r.id, 1, { ...r, status: "approved" })).toBe(false);
    expect(await store.get(r.id)).toEqual({ rev: 2, record: next });
    const unknown = uuidV7();
    expect(await store.swap(unknown, 1, { ...next, id: unknown })).toBe(false);
  });

  it("refuses a swap that changes the id, and a record that breaks the schema", async () => {
    const r = newApproval(uuidV7(), bound({ action: "a4" }), meta, Date.now(), TIMES);
    await store.create(r, null);
    await expect(store.swap(r.id, 1, { ...r, id: uuidV7() })).rejects.toThrow(RangeError);
    const bad = { ...r, status: "allowed" } as unknown as ApprovalRecord;
    await expect(store.swap(r.id, 1, bad)).rejects.toThrow();
    expect((await store.get(r.id))?.record.status).toBe("pending");
  });

  it("concurrent swaps on one revision: exactly one wins", async () => {
    const r = newApproval(uuidV7(), bound({ action: "a5" }), meta, Date.now(), TIMES);
    await store.create(r, null);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        store.swap(r.id, 1, { ...r, status: i % 2 ? "approved" : "denied" }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await store.get(r.id))?.rev).toBe(2);
  });

  it("lists newest first, in pages", async () => {
    const s = make();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = newApproval(uuidV7(), bound({ action: `l${i}` }), meta, Date.now(), TIMES);
      await s.create(r, null);
      ids.push(r.id);
    }
    // Id order (UUIDv7: creation time to the millisecond; ids of one millisecond in any order).
    const order = [...ids].sort().reverse();
    const first = await s.list({ limit: 3 });
    expect(first.map((x) => x.record.id)).toEqual(order.slice(0, 3));
    const rest = await s.list({ limit: 3, before: first[2]!.record.id });
    expect(rest.map((x) => x.record.id)).toEqual(order.slice(3));
    await expect(s.list({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(s.list({ limit: 1001 })).rejects.toThrow(RangeError);
  });

  it("forgets a record after its retention", async () => {
    const old = Date.now() - 10 * TIMES.retentionMs;
    const r = newApproval(uuidV7(), bound({ action: "gone" }), meta, old, TIMES);
    await store.create(r, null);
    expect(await store.get(r.id)).toBeUndefined();
    expect(await store.byBinding(r.binding)).toBeUndefined();
    const fresh = newApproval(uuidV7(), bound({ action: "gone" }), meta, Date.now(), TIMES);
    expect(await store.create(fresh, null)).toEqual({ created: true });
  });

  it("the change feed lists every create and swap in order, after a cursor", async () => {
    const s = make();
    const start = await s.changeCursor();
    expect(await s.changes(start, 10)).toEqual([]);
    const a = newApproval(uuidV7(), bound({ action: "f1" }), meta, Date.now(), TIMES);
    const b = newApproval(uuidV7(), bound({ action: "f2" }), meta, Date.now(), TIMES);
    await s.create(a, null);
    await s.create(b, null);
    expect(await s.swap(a.id, 1, { ...a, status: "denied" })).toBe(true);
    // A lost swap and a refused create change nothing.
    expect(await s.swap(a.id, 1, { ...a, status: "approved" })).toBe(false);
    const c = await s.changes(start, 10);
    expect(c.map((x) => x.id)).toEqual([a.id, b.id, a.id]);
    expect(await s.changeCursor()).toBe(c[2]!.cursor);
    expect((await s.changes(c[0]!.cursor, 10)).map((x) => x.id)).toEqual([b.id, a.id]);
    expect(await s.changes(c[0]!.cursor, 1)).toEqual([c[1]]);
    expect(await s.changes(c[2]!.cursor, 10)).toEqual([]);
    await expect(s.changes("x", 10)).rejects.toThrow(RangeError);
    await expect(s.changes(start, 0)).rejects.toThrow(RangeError);
  });

  describe("the workflow over this adapter", () => {
    it("identical requests share one pending approval; a different one gets its own", async () => {
      const a = await svc.request(bound({ action: "w1" }), meta);
      const b = await svc.request(bound({ action: "w1" }), meta);
      const c = await svc.request(bound({ action: "w1", contextSha256: "b".repeat(64) }), meta);
      expect(a.created).toBe(true);
      expect(b).toMatchObject({ created: false, record: { id: a.record.id } });
      expect(c.record.id).not.toBe(a.record.id);
      expect(
        events.filter((e) => e.type === "approval.requested" && e.record.id === a.record.id),
      ).toHaveLength(1);
    });

    it("identical requests at once still share one approval", async () => {
      const all = await Promise.all(
        Array.from({ length: 6 }, () => svc.request(bound({ action: "w-race" }), meta)),
      );
      expect(new Set(all.map((x) => x.record.id)).size).toBe(1);
      expect(all.filter((x) => x.created)).toHaveLength(1);
    });

    it("approve, then redeem exactly once", async () => {
      const { record } = await svc.request(bound({ action: "w2" }), meta);
      const d = await svc.decide(record.id, { decision: "approve", reason: "ok" }, approver);
      expect(d).toMatchObject({ ok: true, record: { status: "approved" } });
      const r1 = await svc.redeem(record.id, bound({ action: "w2" }), "d1");
      expect(r1).toMatchObject({ ok: true, record: { status: "redeemed" } });
      const r2 = await svc.redeem(record.id, bound({ action: "w2" }), "d2");
      expect(r2).toMatchObject({ ok: false, refusal: { code: "already-redeemed" } });
    });

    it("two answers at once: exactly one wins, the other is already-decided", async () => {
      const { record } = await svc.request(bound({ action: "w3" }), meta);
      const other = { kid: "kid-boss2", subject: "boss2", groups: ["supervisor"] };
      const [a, b] = await Promise.all([
        svc.decide(record.id, { decision: "approve", reason: "yes" }, approver),
        svc.decide(record.id, { decision: "deny", reason: "no" }, other),
      ]);
      expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
      const loser = a.ok ? b : a;
      expect(loser).toMatchObject({ ok: false, refusal: { code: "already-decided" } });
    });

    it("concurrent redemptions: exactly one wins", async () => {
      const { record } = await svc.request(bound({ action: "w4" }), meta);
      await svc.decide(record.id, { decision: "approve", reason: "ok" }, approver);
      const all = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          svc.redeem(record.id, bound({ action: "w4" }), `d${i}`),
        ),
      );
      expect(all.filter((x) => x.ok)).toHaveLength(1);
      expect(
        events.filter((e) => e.type === "approval.redeemed" && e.record.id === record.id),
      ).toHaveLength(1);
    });

    it("separation of duties and approver groups", async () => {
      const { record } = await svc.request(bound({ action: "w5" }), meta);
      const self = { kid: "another-key-of-agent-1", subject: "agent-1", groups: ["supervisor"] };
      expect(await svc.decide(record.id, { decision: "approve", reason: "" }, self)).toMatchObject({
        ok: false,
        refusal: { code: "self-approval" },
      });
      const stranger = { kid: "k", subject: "s", groups: ["ops"] };
      expect(
        await svc.decide(record.id, { decision: "approve", reason: "" }, stranger),
      ).toMatchObject({ ok: false, refusal: { code: "not-approver" } });
      expect((await svc.get(record.id))?.status).toBe("pending");
    });

    it("redemption names what is wrong: other caller, mismatch, pending, denied", async () => {
      const { record } = await svc.request(bound({ action: "w6" }), meta);
      expect(await svc.redeem(record.id, bound({ action: "w6" }), null)).toMatchObject({
        refusal: { code: "not-approved" },
      });
      await svc.decide(record.id, { decision: "approve", reason: "ok" }, approver);
      expect(
        await svc.redeem(record.id, bound({ action: "w6", kid: "kid-other" }), null),
      ).toMatchObject({ refusal: { code: "other-caller" } });
      expect(
        await svc.redeem(record.id, bound({ action: "w6", contextSha256: "c".repeat(64) }), null),
      ).toMatchObject({ refusal: { code: "mismatch", fields: ["contextSha256"] } });
      const denied = await svc.request(bound({ action: "w7" }), meta);
      await svc.decide(denied.record.id, { decision: "deny", reason: "no" }, approver);
      expect(await svc.redeem(denied.record.id, bound({ action: "w7" }), null)).toMatchObject({
        refusal: { code: "denied" },
      });
      expect(await svc.redeem(uuidV7(), bound(), null)).toMatchObject({
        refusal: { code: "not-found" },
      });
    });

    it("expiry comes from stored timestamps: no timer, any instance sees it, audited once", async () => {
      const { record } = await svc.request(bound({ action: "w8" }), meta);
      // A second service over the same store, as another process (or one after a restart).
      const seen: ApprovalEvent[] = [];
      const other = new ApprovalService({
        store,
        times: TIMES,
        newId: uuidV7,
        now: () => clock + TIMES.timeoutMs,
        onEvent: async (e) => {
          seen.push(e);
        },
      });
      expect((await other.get(record.id))?.status).toBe("expired");
      expect(seen.map((e) => e.type)).toEqual(["approval.expired"]);
      expect((await other.get(record.id))?.status).toBe("expired");
      expect(seen).toHaveLength(1);
      expect(
        await other.decide(record.id, { decision: "approve", reason: "late" }, approver),
      ).toMatchObject({ refusal: { code: "already-decided", status: "expired" } });
      expect(await other.redeem(record.id, bound({ action: "w8" }), null)).toMatchObject({
        refusal: { code: "expired" },
      });
      // An expired approval is not shared: the same request opens a new one.
      const again = await other.request(bound({ action: "w8" }), meta);
      expect(again.created).toBe(true);
    });

    it("an approval not redeemed in time expires too", async () => {
      const { record } = await svc.request(bound({ action: "w9" }), meta);
      await svc.decide(record.id, { decision: "approve", reason: "ok" }, approver);
      const later = new ApprovalService({
        store,
        times: TIMES,
        newId: uuidV7,
        now: () => clock + TIMES.timeoutMs + 1,
      });
      expect(await later.redeem(record.id, bound({ action: "w9" }), null)).toMatchObject({
        refusal: { code: "expired" },
      });
    });
  });
});

describe("RedisApprovalStore: Redis is not trusted", () => {
  it("a record edited in Redis (pending → approved) fails its MAC: an error, never an approval", async () => {
    const p = `${prefix}mac:`;
    const store = new RedisApprovalStore(redis, p, { macKey });
    const r = newApproval(uuidV7(), bound({ action: "mac" }), meta, Date.now(), TIMES);
    await store.create(r, null);
    const key = `${p}approvals:{a}:rec:${r.id}`;
    const v = (await redis.hget(key, "v"))!;
    await redis.hset(key, "v", v.replace('"status":"pending"', '"status":"approved"'));
    await expect(store.get(r.id)).rejects.toThrow(/integrity/);
    // Another deployment's MAC key does not verify either.
    const other = new RedisApprovalStore(redis, p, { macKey: new Uint8Array(32).fill(8) });
    await redis.hset(key, "v", v);
    await expect(other.get(r.id)).rejects.toThrow(/integrity/);
    expect((await store.get(r.id))?.record.status).toBe("pending");
  });
});
