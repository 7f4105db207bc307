// Approvals over HTTP on Node (real Redis) and the edge (real workerd), with the security model's
// resource_governance policy (examples/security-model.policy): `require: supervisor_approval for
// high_memory_operations` becomes an approval a supervisor answers and the requester redeems once.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sigil, SigilError } from "../../sdk";
import { signRequest } from "../../shared/httpsig";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";
import { repoRoot } from "../support/vectors";

const MODEL = readFileSync(join(repoRoot, "examples/security-model.policy"), "utf8");

const allocate = (extra: Record<string, unknown> = {}) => ({
  action: "allocate",
  resource: "resources",
  tags: ["high_memory_operations"],
  context: {
    user: { resource_quota: { remaining: 16 }, max_priority: 5 },
    resources: { total: 8 },
    operation: { priority: 3 },
    ...extra,
  },
});

async function problemOf(p: Promise<unknown>): Promise<SigilError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SigilError) return e;
    throw e;
  }
  throw new Error("expected a problem response");
}
const typeOf = (e: SigilError) => e.type?.split("/").pop();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(targetNames)("approvals on %s", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let requesterKey: TestKey;
  let requester: Sigil;
  /** Another key of the requester's subject, which even holds the approver group. */
  let sameSubject: Sigil;
  let boss: Sigil;
  let boss2: Sigil;
  let outsider: Sigil;
  let worker: Sigil;
  let auditor: Sigil;
  let bossKey: TestKey;

  /** A request signed by `key`, sent as is (and again, for a replay). */
  async function signed(key: TestKey, method: string, path: string, body?: string) {
    const url = `${t.url}${path}`;
    const headers = new Headers();
    if (body !== undefined) headers.set("content-type", "application/json");
    const sig = await signRequest({ method, url, headers, body: body ?? null }, key.signer, {
      keyid: key.kid,
    });
    for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
    const send = async () => {
      const r = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : null };
    };
    return send;
  }

  async function pendingApproval(extra: Record<string, unknown>): Promise<string> {
    const d = await requester.evaluate(allocate(extra));
    expect(d.decision).toBe("require_approval");
    return d.approvalId!;
  }

  async function auditFor(approvalId: string) {
    const { events } = await auditor.audit.list({ from: 0, limit: 1000 });
    return events.filter(
      (e) => (e.details as { approvalId?: string }).approvalId === approvalId,
    ) as { eventType: string; agentId: string; details: Record<string, unknown> }[];
  }

  beforeAll(async () => {
    t = await startTarget(targetName);
    admin = t.client(t.admin);
    requesterKey = await registeredKey(admin, "agent", "agent-alloc");
    requester = t.client(requesterKey);
    sameSubject = t.client(
      await registeredKey(admin, "agent", "agent-alloc", { groups: ["supervisor"] }),
    );
    bossKey = await registeredKey(admin, "agent", "boss-1", { groups: ["supervisor"] });
    boss = t.client(bossKey);
    boss2 = t.client(await registeredKey(admin, "agent", "boss-2", { groups: ["supervisor"] }));
    outsider = t.client(await registeredKey(admin, "agent", "ops-1", { groups: ["ops"] }));
    worker = t.client(await registeredKey(admin, "worker", "worker-1", { groups: ["supervisor"] }));
    auditor = t.client(await registeredKey(admin, "auditor", "auditor-1"));
    await admin.policies.put("security-model", MODEL);
  }, 180_000);
  afterAll(async () => t?.stop());

  it("the routes are in the OpenAPI document, and evaluate takes approvalId", async () => {
    const doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    for (const p of ["/v1/approvals", "/v1/approvals/{id}", "/v1/approvals/{id}/decision"]) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
    expect(JSON.stringify(doc.paths["/v1/evaluate"])).toContain("approvalId");
  });

  it("high_memory_operations: require_approval by supervisor, with an approvalId an identical request shares", async () => {
    const d = await requester.evaluate(allocate());
    expect(d).toMatchObject({ decision: "require_approval", approver: "supervisor" });
    expect(d.approvalId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await requester.evaluate(allocate())).approvalId).toBe(d.approvalId);
    // Another context is another request: its own approval.
    const other = await requester.evaluate(allocate({ note: "other" }));
    expect(other.approvalId).not.toBe(d.approvalId);
    // Without the tag no approval is needed (and none is opened).
    const plain = await requester.evaluate({ ...allocate(), tags: [] });
    expect(plain.decision).toBe("allow");
    expect(plain.approvalId).toBeUndefined();

    const a = await requester.approvals.get(d.approvalId!);
    expect(a).toMatchObject({
      status: "pending",
      approver: "supervisor",
      request: { kid: requesterKey.kid, subject: "agent-alloc", action: "allocate" },
    });
    expect((await boss.approvals.list({ status: "pending" })).approvals.map((x) => x.id)).toContain(
      d.approvalId,
    );
    expect((await admin.approvals.list()).approvals.map((x) => x.id)).toContain(d.approvalId);
    // Neither requester nor approver nor admin: it does not exist for this key.
    expect((await problemOf(outsider.approvals.get(d.approvalId!))).status).toBe(404);
    expect((await outsider.approvals.list()).approvals.map((x) => x.id)).not.toContain(
      d.approvalId,
    );
  });

  it("a supervisor approves; the requester redeems once; every other use is refused with its reason", async () => {
    const id = await pendingApproval({ case: "main" });
    // Before the answer: not approved.
    const early = await requester.evaluate({ ...allocate({ case: "main" }), approvalId: id });
    expect(early).toMatchObject({ decision: "deny", approvalRefusal: "not-approved" });

    const approved = await boss.approvals.decide(id, {
      decision: "approve",
      reason: "capacity ok",
    });
    expect(approved).toMatchObject({
      status: "approved",
      decision: { decision: "approve", by: { kid: bossKey.kid, subject: "boss-1" } },
    });

    // A changed context: refused, naming the difference, and the approval is not spent.
    const changed = await requester.evaluate({
      ...allocate({ case: "main", resources: { total: 9 } }),
      approvalId: id,
    });
    expect(changed).toMatchObject({ decision: "deny", approvalRefusal: "mismatch" });
    expect(changed.reason).toMatch(/contextSha256/);
    // Another key (even of the same subject): refused.
    const otherKey = await sameSubject.evaluate({ ...allocate({ case: "main" }), approvalId: id });
    expect(otherKey).toMatchObject({ decision: "deny", approvalRefusal: "other-caller" });

    const ok = await requester.evaluate({ ...allocate({ case: "main" }), approvalId: id });
    expect(ok).toMatchObject({ decision: "allow", approvalId: id, approver: "supervisor" });
    expect(ok.reason).toMatch(/boss-1/);
    expect((await requester.approvals.get(id)).status).toBe("redeemed");

    const again = await requester.evaluate({ ...allocate({ case: "main" }), approvalId: id });
    expect(again).toMatchObject({ decision: "deny", approvalRefusal: "already-redeemed" });

    const unknown = await requester.evaluate({
      ...allocate({ case: "main" }),
      approvalId: "00000000-0000-7000-8000-000000000000",
    });
    expect(unknown).toMatchObject({ decision: "deny", approvalRefusal: "not-found" });

    const events = await auditFor(id);
    const types = events.map((e) => e.eventType);
    expect(types).toEqual(
      expect.arrayContaining([
        "approval.requested",
        "approval.approved",
        "approval.redeemed",
        "approval.refused",
      ]),
    );
    expect(types.filter((x) => x === "approval.redeemed")).toHaveLength(1);
    const refusals = events
      .filter((e) => e.eventType === "approval.refused")
      .map((e) => e.details.code);
    expect(refusals).toEqual(
      expect.arrayContaining(["not-approved", "mismatch", "other-caller", "already-redeemed"]),
    );
    expect(events.find((e) => e.eventType === "approval.approved")?.agentId).toBe("boss-1");
  });

  it("a denied approval is refused as denied", async () => {
    const id = await pendingApproval({ case: "denied" });
    const denied = await boss.approvals.decide(id, { decision: "deny", reason: "not today" });
    expect(denied.status).toBe("denied");
    const d = await requester.evaluate({ ...allocate({ case: "denied" }), approvalId: id });
    expect(d).toMatchObject({ decision: "deny", approvalRefusal: "denied" });
    expect((await auditFor(id)).map((e) => e.eventType)).toContain("approval.denied");
  });

  it("separation of duties: the requester's key, or another key of its subject, gets 403", async () => {
    const id = await pendingApproval({ case: "self" });
    const own = await problemOf(requester.approvals.decide(id, { decision: "approve" }));
    expect([own.status, typeOf(own)]).toEqual([403, "separation-of-duties"]);
    const sibling = await problemOf(sameSubject.approvals.decide(id, { decision: "approve" }));
    expect([sibling.status, typeOf(sibling)]).toEqual([403, "separation-of-duties"]);
    // A key without the group (an admin sees it but may not answer), and keys of the wrong role.
    const noGroup = await problemOf(admin.approvals.decide(id, { decision: "approve" }));
    expect([noGroup.status, typeOf(noGroup)]).toEqual([403, "forbidden"]);
    for (const c of [worker, auditor]) {
      const e = await problemOf(c.approvals.decide(id, { decision: "approve" }));
      expect([e.status, typeOf(e)]).toEqual([403, "forbidden"]);
    }
    expect((await problemOf(outsider.approvals.decide(id, { decision: "approve" }))).status).toBe(
      404,
    );
    // A worker key reads nothing either, whatever groups its record holds.
    expect((await problemOf(worker.approvals.get(id))).status).toBe(403);
    expect((await problemOf(worker.approvals.list())).status).toBe(403);
    expect((await boss.approvals.get(id)).status).toBe("pending");
    const codes = (await auditFor(id))
      .filter((e) => e.eventType === "approval.refused")
      .map((e) => e.details.code);
    expect(codes).toEqual(expect.arrayContaining(["self-approval", "not-approver"]));
  });

  it("two approvers at once: exactly one 200, the other 409", async () => {
    const id = await pendingApproval({ case: "race" });
    const results = await Promise.allSettled([
      boss.approvals.decide(id, { decision: "approve", reason: "a" }),
      boss2.approvals.decide(id, { decision: "deny", reason: "b" }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect((lost.reason as SigilError).status).toBe(409);
    const events = (await auditFor(id)).filter((e) =>
      ["approval.approved", "approval.denied"].includes(e.eventType),
    );
    expect(events).toHaveLength(1);
    // And a later answer is 409 too.
    expect((await problemOf(boss.approvals.decide(id, { decision: "approve" }))).status).toBe(409);
  });

  it("server-sent events: a console sees every change it may see, and no other", async () => {
    const collect = (client: Sigil) => {
      const abort = new AbortController();
      const seen: { id?: string; status: string; approvalId: string }[] = [];
      const done = (async () => {
        try {
          for await (const e of client.approvals.events({
            signal: abort.signal,
            timeoutMs: 60_000,
          })) {
            if (e.event !== "approval") continue;
            const a = e.data as { id: string; status: string };
            seen.push({ id: e.id, status: a.status, approvalId: a.id });
          }
        } catch {
          // aborted
        }
      })();
      const stop = async () => {
        abort.abort();
        await done;
      };
      return { seen, stop };
    };
    const console1 = collect(boss);
    const other = collect(outsider);
    await sleep(1000); // both streams are open and past their starting cursor
    const id = await pendingApproval({ case: "sse" });
    await boss.approvals.decide(id, { decision: "approve", reason: "ok" });
    await requester.evaluate({ ...allocate({ case: "sse" }), approvalId: id });
    const mine = () => console1.seen.filter((x) => x.approvalId === id);
    for (let i = 0; i < 100 && mine().length < 3; i++) await sleep(100);
    await sleep(700);
    await console1.stop();
    await other.stop();
    // One event per change (requested, approved, redeemed), each with the approval as it is then.
    expect(mine()).toHaveLength(3);
    expect(mine()[2]!.status).toBe("redeemed");
    expect(new Set(mine().map((x) => x.id)).size).toBe(3);
    expect(other.seen.filter((x) => x.approvalId === id)).toEqual([]);
  });

  describe("hostile input", () => {
    it("ids, statuses and bodies out of bounds are 400", async () => {
      const id = await pendingApproval({ case: "hostile" });
      expect((await problemOf(boss.approvals.get("x".repeat(300)))).status).toBe(400);
      expect((await problemOf(boss.approvals.get("../../v1/keys"))).status).toBe(400);
      expect((await problemOf(boss.approvals.list({ status: "bogus" as "pending" }))).status).toBe(
        400,
      );
      expect((await problemOf(boss.approvals.list({ limit: 100_000 }))).status).toBe(400);
      const long = await problemOf(
        boss.approvals.decide(id, { decision: "approve", reason: "r".repeat(5000) }),
      );
      expect(long.status).toBe(400);
      const bad = await problemOf(
        boss.approvals.decide(id, { decision: "maybe" as "approve", reason: "" }),
      );
      expect(bad.status).toBe(400);
      // A lone surrogate in the reason (sent raw, the SDK would not produce it).
      const lone = await signed(
        bossKey,
        "POST",
        `/v1/approvals/${id}/decision`,
        '{"decision":"approve","reason":"\\ud800"}',
      );
      expect((await lone()).status).toBe(400);
      // An approvalId that is not an id, and one in a batch (a redemption is one request).
      expect(
        (await problemOf(requester.evaluate({ ...allocate(), approvalId: "x".repeat(1000) })))
          .status,
      ).toBe(400);
      expect(
        (
          await problemOf(
            requester.evaluateBatch([
              { ...allocate(), approvalId: id } as ReturnType<typeof allocate>,
            ]),
          )
        ).status,
      ).toBe(400);
      expect((await boss.approvals.get(id)).status).toBe("pending");
    });

    it("a replayed redemption or answer is refused (401) and changes nothing", async () => {
      const id = await pendingApproval({ case: "replay" });
      const answer = await signed(
        bossKey,
        "POST",
        `/v1/approvals/${id}/decision`,
        JSON.stringify({ decision: "approve", reason: "once" }),
      );
      expect((await answer()).status).toBe(200);
      expect((await answer()).status).toBe(401);
      const redeem = await signed(
        requesterKey,
        "POST",
        "/v1/evaluate",
        JSON.stringify({ ...allocate({ case: "replay" }), approvalId: id }),
      );
      const first = await redeem();
      expect(first).toMatchObject({ status: 200, json: { decision: "allow", approvalId: id } });
      const replay = await redeem();
      expect(replay.status).toBe(401);
      expect((await auditFor(id)).filter((e) => e.eventType === "approval.redeemed")).toHaveLength(
        1,
      );
    });
  });

  describe("expiry ([approvals] timeout_s = 1)", () => {
    let short: Target;
    beforeAll(async () => {
      short = await startTarget(targetName, { SIGIL_APPROVALS_TIMEOUT_S: "1" });
    }, 180_000);
    afterAll(async () => short?.stop());

    it("an unanswered approval expires: a deny, its answer 409, its redemption refused as expired", async () => {
      const a = short.client(short.admin);
      const reqKey = await registeredKey(a, "agent", "agent-x");
      const bKey = await registeredKey(a, "agent", "boss-x", { groups: ["supervisor"] });
      const audKey = await registeredKey(a, "auditor", "aud-x");
      await a.policies.put("security-model", MODEL);
      const r = short.client(reqKey);
      const b = short.client(bKey);
      const d = await r.evaluate(allocate());
      expect(d.decision).toBe("require_approval");
      await sleep(1500);
      expect((await b.approvals.get(d.approvalId!)).status).toBe("expired");
      const late = await problemOf(b.approvals.decide(d.approvalId!, { decision: "approve" }));
      expect(late.status).toBe(409);
      const redeem = await r.evaluate({ ...allocate(), approvalId: d.approvalId! });
      expect(redeem).toMatchObject({ decision: "deny", approvalRefusal: "expired" });
      expect((await b.approvals.list({ status: "expired" })).approvals.map((x) => x.id)).toContain(
        d.approvalId,
      );
      const { events } = await short.client(audKey).audit.list({ from: 0, limit: 1000 });
      const expired = events.filter(
        (e) =>
          e.eventType === "approval.expired" &&
          (e.details as { approvalId?: string }).approvalId === d.approvalId,
      );
      expect(expired).toHaveLength(1);
      // An approved approval not redeemed within timeout_s expires too.
      const d2 = await r.evaluate(allocate({ case: 2 }));
      await b.approvals.decide(d2.approvalId!, { decision: "approve" });
      await sleep(1500);
      expect(
        await r.evaluate({ ...allocate({ case: 2 }), approvalId: d2.approvalId! }),
      ).toMatchObject({ decision: "deny", approvalRefusal: "expired" });
    });
  });
});
