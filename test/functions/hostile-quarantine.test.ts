// Quarantine over HTTP on both targets (Node with Redis, the edge under workerd): an admin
// quarantines a key or a subject and its next request is 403 `quarantined`, whatever the route;
// lifting restores access but never a revoked key; only admins place and lift; hostile bodies
// are refused; two concurrent places store one record; every place and lift is audited.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { signRequest } from "../../shared/httpsig";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

describe.each(targetNames)("quarantine (%s)", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let auditorKey: TestKey;

  beforeAll(async () => {
    t = await startTarget(targetName);
    admin = t.client(t.admin);
    auditorKey = await registeredKey(admin, "auditor", "auditor-q");
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  async function call(
    key: TestKey,
    method: string,
    path: string,
    body?: string,
  ): Promise<{ status: number; json: { type?: string; [k: string]: unknown } }> {
    const url = `${t.url}${path}`;
    const headers = new Headers(body !== undefined ? { "content-type": "application/json" } : {});
    const sig = await signRequest({ method, url, headers, body: body ?? null }, key.signer, {
      keyid: key.kid,
    });
    for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
    const r = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : {} };
  }
  const place = (key: TestKey, body: Record<string, unknown>) =>
    call(key, "POST", "/v1/quarantine", JSON.stringify(body));
  const lift = (key: TestKey, id: string, reason = "resolved") =>
    call(key, "DELETE", `/v1/quarantine/${id}`, JSON.stringify({ reason }));
  /** A request any agent may make. */
  const probe = (key: TestKey) =>
    call(key, "POST", "/v1/evaluate", JSON.stringify({ action: "ping", context: {} }));
  const typeOf = (j: { type?: string }) => j.type?.slice(j.type.lastIndexOf("/") + 1);

  it("a quarantined key is refused with 403 quarantined; lifting restores it", async () => {
    const agent = await registeredKey(admin, "agent", "q-agent-1");
    expect((await probe(agent)).status).toBe(200);
    const placed = await place(t.admin, { kid: agent.kid, reason: "replayed requests" });
    expect(placed.status).toBe(201);
    const q = placed.json.quarantine as { id: string; active: boolean; placedBy: string };
    expect(q.active).toBe(true);
    const refused = await probe(agent);
    expect(refused.status).toBe(403);
    expect(typeOf(refused.json)).toBe("quarantined");
    expect(refused.json.quarantineId).toBe(q.id);
    // Every route, not only evaluation.
    expect(typeOf((await call(agent, "GET", "/v1/audit/checkpoint")).json)).toBe("quarantined");
    const lifted = await lift(t.admin, q.id);
    expect(lifted.status).toBe(200);
    expect(lifted.json.lifted).toBe(true);
    expect((await probe(agent)).status).toBe(200);
    // A second lift changes nothing.
    expect((await lift(t.admin, q.id)).json.lifted).toBe(false);
  });

  it("a quarantined subject: every key of it is refused, other subjects are not", async () => {
    const a = await registeredKey(admin, "agent", "q-agent-2");
    const b = await registeredKey(admin, "agent", "q-agent-2");
    const other = await registeredKey(admin, "agent", "q-agent-3");
    const placed = await place(t.admin, { subject: "q-agent-2", reason: "incident" });
    expect(placed.status).toBe(201);
    expect((await probe(a)).status).toBe(403);
    expect(typeOf((await probe(b)).json)).toBe("quarantined");
    expect((await probe(other)).status).toBe(200);
  });

  it("lifting never restores a revoked key", async () => {
    const agent = await registeredKey(admin, "agent", "q-agent-4");
    const placed = await place(t.admin, { kid: agent.kid, reason: "compromised" });
    await admin.keys.revoke(agent.kid);
    await lift(t.admin, (placed.json.quarantine as { id: string }).id);
    const after = await probe(agent);
    expect(after.status).toBe(401);
  });

  it("two concurrent places of one target store one record", async () => {
    const agent = await registeredKey(admin, "agent", "q-agent-5");
    const [x, y] = await Promise.all([
      place(t.admin, { kid: agent.kid, reason: "first" }),
      place(t.admin, { kid: agent.kid, reason: "second" }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 201]);
    const id = (x.json.quarantine as { id: string }).id;
    expect((y.json.quarantine as { id: string }).id).toBe(id);
    const list = await call(auditorKey, "GET", "/v1/quarantine?active=true&limit=500");
    expect(list.status).toBe(200);
    const mine = (list.json.quarantines as { target: { kid?: string } }[]).filter(
      (r) => r.target.kid === agent.kid,
    );
    expect(mine).toHaveLength(1);
  });

  it("only admins place and lift; auditors list; agents do neither", async () => {
    const agent = await registeredKey(admin, "agent", "q-agent-6");
    const victim = await registeredKey(admin, "agent", "q-agent-7");
    const byAgent = await place(agent, { subject: "q-agent-7", reason: "spite" });
    expect(byAgent.status).toBe(403);
    expect(typeOf(byAgent.json)).toBe("forbidden");
    expect((await place(auditorKey, { subject: "q-agent-7", reason: "x" })).status).toBe(403);
    expect((await probe(victim)).status).toBe(200);
    const placed = await place(t.admin, { kid: victim.kid, reason: "x" });
    const id = (placed.json.quarantine as { id: string }).id;
    expect((await lift(agent, id)).status).toBe(403);
    expect((await lift(victim, id)).status).toBe(403);
    expect((await call(agent, "GET", "/v1/quarantine")).status).toBe(403);
    expect((await probe(victim)).status).toBe(403);
  });

  it("hostile bodies: ill-formed Unicode, a claimed placer, two targets, oversized", async () => {
    const lone = await place(t.admin, { subject: "q-x", reason: "bad \ud800 reason" });
    expect(lone.status).toBe(400);
    // JSON.stringify escapes a lone surrogate; send it raw-escaped too.
    const raw = await call(
      t.admin,
      "POST",
      "/v1/quarantine",
      '{"subject":"q-\\udc00","reason":"r"}',
    );
    expect(raw.status).toBe(400);
    // The placer is the signing key's subject, never a field of the body.
    const spoof = await place(t.admin, { subject: "q-y", reason: "r", placedBy: "someone-else" });
    expect(spoof.status).toBe(400);
    expect((await place(t.admin, { subject: "q-y", kid: "k", reason: "r" })).status).toBe(400);
    expect((await place(t.admin, { reason: "r" })).status).toBe(400);
    expect((await place(t.admin, { subject: "q-y", reason: "" })).status).toBe(400);
    const big = await place(t.admin, { subject: "q-y", reason: "x".repeat(2_000_000) });
    expect(big.status).toBe(413);
    expect((await lift(t.admin, "not-a-uuid")).status).toBe(400);
    expect((await lift(t.admin, "01890000-0000-7000-8000-000000000000")).status).toBe(404);
  });

  it("every place and lift is audited, naming the admin", async () => {
    const agent = await registeredKey(admin, "agent", "q-agent-8");
    const placed = await place(t.admin, { kid: agent.kid, reason: "audit me" });
    const id = (placed.json.quarantine as { id: string }).id;
    await lift(t.admin, id, "done");
    const { treeSize } = await admin.audit.checkpoint();
    const page = await admin.audit.list({ from: Math.max(0, treeSize - 50), limit: 50 });
    const mine = page.events.filter(
      (e) => (e.details as { quarantineId?: string }).quarantineId === id,
    );
    expect(mine.map((e) => e.eventType)).toEqual(["quarantine.placed", "quarantine.lifted"]);
    expect(mine[1]!.details).toMatchObject({ liftReason: "done", reason: "audit me" });
  });
});
