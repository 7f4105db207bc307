// A quarantined worker (docs/incidents.md "Quarantine"): every report it makes under its worker id,
// start or result, is refused with 403 `quarantined` and a high-severity security event, before
// anything about the job is read or recorded; another worker id is unaffected; lifting ends it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { signRequest } from "../../shared/httpsig";
import { registeredKey, startTarget, type Target, type TestKey } from "../support/targets";

let t: Target;
let admin: Sigil;
let worker: TestKey;

beforeAll(async () => {
  t = await startTarget("node");
  admin = t.client(t.admin);
  worker = await registeredKey(admin, "worker", "qw-worker");
}, 120_000);
afterAll(async () => {
  await t?.stop();
});

async function call(key: TestKey, method: string, path: string, body: unknown) {
  const url = `${t.url}${path}`;
  const text = JSON.stringify(body);
  const headers = new Headers({ "content-type": "application/json" });
  const sig = await signRequest({ method, url, headers, body: text }, key.signer, {
    keyid: key.kid,
  });
  for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
  const r = await fetch(url, { method, headers, body: text });
  return { status: r.status, json: (await r.json()) as { type?: string; [k: string]: unknown } };
}

const started = (workerId: string) => ({
  type: "started",
  attempt: 1,
  workerId,
  envelopeHash: "a".repeat(64),
  lockHash: "b".repeat(64),
});

describe("a quarantined worker", () => {
  it("has its reports refused (403 quarantined, a security event) until the quarantine is lifted", async () => {
    const jobId = "qw-job-1";
    // Not quarantined: the report reaches the job lookup (no such job).
    expect((await call(worker, "POST", `/v1/jobs/${jobId}/result`, started("w-q1"))).status).toBe(
      404,
    );
    const placed = await call(t.admin, "POST", "/v1/quarantine", {
      workerId: "w-q1",
      reason: "forged result",
    });
    expect(placed.status).toBe(201);
    const q = placed.json.quarantine as { id: string };
    const refused = await call(worker, "POST", `/v1/jobs/${jobId}/result`, started("w-q1"));
    expect(refused.status).toBe(403);
    expect(refused.json.type).toMatch(/\/quarantined$/);
    // Another worker id is not affected.
    expect((await call(worker, "POST", `/v1/jobs/${jobId}/result`, started("w-q2"))).status).toBe(
      404,
    );
    const { treeSize } = await admin.audit.checkpoint();
    const page = await admin.audit.list({ from: Math.max(0, treeSize - 20), limit: 20 });
    const events = page.events.filter(
      (e) =>
        e.eventType === "security.event" &&
        (e.details as { quarantineId?: string }).quarantineId === q.id,
    );
    expect(events).toHaveLength(1);
    expect(events[0]!.details).toMatchObject({ severity: "high", workerId: "w-q1", jobId });

    await call(t.admin, "DELETE", `/v1/quarantine/${q.id}`, { reason: "false positive" });
    expect((await call(worker, "POST", `/v1/jobs/${jobId}/result`, started("w-q1"))).status).toBe(
      404,
    );
  });

  it("named by its key id (as incident response names it): refused under any worker id, and not as a forged result", async () => {
    const jobId = "qw-job-2";
    const placed = await call(t.admin, "POST", "/v1/quarantine", {
      workerId: worker.kid,
      reason: "incident: forged result",
    });
    expect(placed.status).toBe(201);
    const q = placed.json.quarantine as { id: string };
    const refused = await call(worker, "POST", `/v1/jobs/${jobId}/result`, started("w-any"));
    expect(refused.status).toBe(403);
    expect(refused.json.type).toMatch(/\/quarantined$/);
    const { treeSize } = await admin.audit.checkpoint();
    const page = await admin.audit.list({ from: Math.max(0, treeSize - 20), limit: 20 });
    const events = page.events.filter(
      (e) =>
        e.eventType === "security.event" &&
        (e.details as { quarantineId?: string }).quarantineId === q.id,
    );
    // Its own category: a report from an isolated worker must not feed the forged-result detector.
    expect(events.map((e) => (e.details as { category: string }).category)).toEqual([
      "worker.quarantined_report",
    ]);
    await call(t.admin, "DELETE", `/v1/quarantine/${q.id}`, { reason: "resolved" });
  });
});
