// The incident routes as a hostile client tries them, on Node (Redis) and on the edge (workerd):
// a key of the wrong role, an unknown or ill-formed id, an ill-formed Unicode or oversized reason,
// an emergency override while overrides are disabled (refused and audited), and the SDK's change
// stream.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import { newKey, startTarget, type Target, type TestKey, targetNames } from "../support/targets";

async function send(base: string, method: string, path: string, key: TestKey, raw?: string) {
  const url = `${base}${path}`;
  const headers: Record<string, string> = raw ? { "content-type": "application/json" } : {};
  Object.assign(
    headers,
    await signRequest({ method, url, headers, body: raw ?? null }, key.signer, { keyid: key.kid }),
  );
  const r = await fetch(url, { method, headers, ...(raw ? { body: raw } : {}) });
  const text = await r.text();
  const json = text ? (JSON.parse(text) as { type?: string }) : null;
  return { status: r.status, type: json?.type?.split("/").pop(), json };
}

const UNKNOWN = "01900000-0000-7000-8000-000000000000";

describe.each(targetNames)("hostile incident routes on %s", (targetName) => {
  let t: Target;
  let agent: TestKey;
  beforeAll(async () => {
    t = await startTarget(targetName);
    agent = await newKey();
    await t.client(t.admin).keys.create({
      role: "agent",
      subject: "agent-hostile",
      publicKey: toBase64Url(agent.publicKey),
    });
  }, 120_000);
  afterAll(() => t?.stop());

  it("an agent key may not read or move incidents (403)", async () => {
    expect((await send(t.url, "GET", "/v1/incidents", agent)).status).toBe(403);
    const moved = await send(
      t.url,
      "POST",
      `/v1/incidents/${UNKNOWN}/resolve`,
      agent,
      JSON.stringify({ reason: "mine" }),
    );
    expect(moved.status).toBe(403);
  });

  it("an admin lists (empty), and an unknown or ill-formed id is 404 / 400", async () => {
    const list = await send(t.url, "GET", "/v1/incidents?state=open&severity=high", t.admin);
    expect(list.status).toBe(200);
    expect(list.json).toMatchObject({ incidents: [], next: null });
    expect((await send(t.url, "GET", `/v1/incidents/${UNKNOWN}`, t.admin)).status).toBe(404);
    expect((await send(t.url, "GET", `/v1/incidents/${UNKNOWN}/evidence`, t.admin)).status).toBe(
      404,
    );
    expect((await send(t.url, "GET", "/v1/incidents/not-an-id", t.admin)).status).toBe(400);
    expect((await send(t.url, "GET", "/v1/incidents?state=closed", t.admin)).status).toBe(400);
  });

  it("a reason with a lone surrogate, an empty one or an oversized body is refused", async () => {
    const path = `/v1/incidents/${UNKNOWN}/acknowledge`;
    const lone = await send(t.url, "POST", path, t.admin, '{"reason":"x\\ud800y"}');
    expect(lone.status).toBe(400);
    expect((await send(t.url, "POST", path, t.admin, '{"reason":""}')).status).toBe(400);
    const big = await send(
      t.url,
      "POST",
      path,
      t.admin,
      JSON.stringify({ reason: "a".repeat(2_000_000) }),
    );
    expect(big.status).toBe(413);
    // Well-formed, but no such incident.
    expect((await send(t.url, "POST", path, t.admin, '{"reason":"seen"}')).status).toBe(404);
  });

  it("the SDK's incident methods reach the routes (and map 404 to an error)", async () => {
    const sdk = t.client(t.admin);
    expect(await sdk.incidents.list({ state: "open" })).toEqual({ incidents: [], next: null });
    expect((await sdk.incidents.emergency()).overrideEnabled).toBe(false);
    await expect(sdk.incidents.move(UNKNOWN, "resolve", "done")).rejects.toMatchObject({
      status: 404,
    });
  });

  it("the SDK's change stream (incidents.events): an admin's opens and stays open, an agent key is refused", async () => {
    // The console follows it (test/console/console.test.ts sees a change arrive); here the role.
    const stream = t.client(agent).incidents.events()[Symbol.asyncIterator]();
    await expect(stream.next()).rejects.toMatchObject({ status: 403 });
    // An admin's stream opens and stays open: stopping it aborts the body being read (an
    // AbortError from the stream), not a problem response (a wrong path would be 400 or 404).
    const abort = new AbortController();
    const open = t
      .client(t.admin)
      .incidents.events({ signal: abort.signal })
      [Symbol.asyncIterator]();
    const first = open.next();
    setTimeout(() => abort.abort(), 3000);
    await expect(first).rejects.toMatchObject({ name: "AbortError" });
  });

  it("emergency override while overrides are disabled: 403, and the attempt is audited", async () => {
    const state = await send(t.url, "GET", "/v1/incidents/emergency", t.admin);
    expect(state.json).toMatchObject({ emergency: null, overrideEnabled: false });
    const r = await send(
      t.url,
      "POST",
      "/v1/incidents/emergency/override",
      t.admin,
      JSON.stringify({ reason: "let me" }),
    );
    expect(r.status).toBe(403);
    const events = await t.client(t.admin).audit.list({ limit: 1000 });
    expect(
      events.events.some(
        (e) =>
          e.eventType === "security.event" && e.details.category === "incident.override_refused",
      ),
    ).toBe(true);
  });
});
