// The server-sent event streams (functions/sse-feed.ts) as a hostile client tries them, against
// the Node API on real Redis: a malformed or huge Last-Event-ID is a 400 problem, a key of the
// wrong role is refused, a replayed signature is refused, and a stream whose key is revoked or
// quarantined while it is open ends with an `end` event carrying the problem.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readServerSentEvents, type ServerSentEvent, type Sigil, SigilError } from "../../sdk";
import { signRequest } from "../../shared/httpsig";
import { openTestIncident } from "../support/incidents";
import { registeredKey, startTarget, type Target, type TestKey } from "../support/targets";

let t: Target;
let admin: Sigil;
let jobId: string;

/** A GET signed by `key`; `send` may be called again to replay the very same signed request. */
async function signedGet(key: TestKey, path: string, extra: Record<string, string> = {}) {
  const url = `${t.url}${path}`;
  const headers: Record<string, string> = { accept: "text/event-stream", ...extra };
  Object.assign(
    headers,
    await signRequest({ method: "GET", url, headers }, key.signer, { keyid: key.kid }),
  );
  return (signal?: AbortSignal) => fetch(url, { headers, ...(signal ? { signal } : {}) });
}

async function problemOf(r: Response) {
  expect(r.headers.get("content-type")).toContain("application/problem+json");
  const p = (await r.json()) as { type: string; detail?: string };
  return { status: r.status, type: p.type.split("/").pop() };
}

/** Every event of an open stream until the server ends it (bounded by `ms`). */
async function drain(r: Response, ms = 60_000): Promise<ServerSentEvent[]> {
  const out: ServerSentEvent[] = [];
  const body = r.body;
  if (!body) throw new Error("no body");
  const timer = setTimeout(() => void body.cancel().catch(() => undefined), ms);
  try {
    for await (const e of readServerSentEvents(body)) out.push(e);
  } finally {
    clearTimeout(timer);
  }
  return out;
}

const streams = [
  { name: "incidents", path: () => "/v1/incidents/events", reader: "auditor", refused: "agent" },
  { name: "approvals", path: () => "/v1/approvals/events", reader: "auditor", refused: "worker" },
  { name: "jobs", path: () => `/v1/jobs/${jobId}/events`, reader: "auditor", refused: "worker" },
] as const;

beforeAll(async () => {
  t = await startTarget("node");
  admin = t.client(t.admin);
  // A job no worker will take: its stream stays open after `queued`.
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
  const agent = await registeredKey(admin, "agent", "streams-agent");
  jobId = (await t.client(agent).jobs.submit({ image: "sigil/busybox:1", command: ["true"] }))
    .jobId;
}, 120_000);
afterAll(() => t?.stop());

describe.each(streams)("the $name stream", (s) => {
  it("a malformed, overlong or huge Last-Event-ID is a 400 problem, nothing is streamed", async () => {
    const key = await registeredKey(admin, s.reader, `${s.name}-lei`);
    for (const bad of ["abc", "1-2-3", "-1", "1 OR 1=1", "9".repeat(30), "1".repeat(8_000)]) {
      const r = await (await signedGet(key, s.path(), { "last-event-id": bad }))();
      expect(await problemOf(r), bad.slice(0, 20)).toEqual({ status: 400, type: "validation" });
    }
  });

  it("a key of the wrong role is refused (403)", async () => {
    const key = await registeredKey(admin, s.refused, `${s.name}-wrong`);
    const r = await (await signedGet(key, s.path()))();
    expect(await problemOf(r)).toEqual({ status: 403, type: "forbidden" });
  });

  it("a replayed signature is refused (401 replay) while the first stream runs", async () => {
    const key = await registeredKey(admin, s.reader, `${s.name}-replay`);
    const send = await signedGet(key, s.path());
    const abort = new AbortController();
    const first = await send(abort.signal);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toContain("text/event-stream");
    const again = await send();
    expect(await problemOf(again)).toEqual({ status: 401, type: "replay" });
    abort.abort();
  });

  it("revoking the key ends the open stream with an `end` problem (key-unknown)", async () => {
    const key = await registeredKey(admin, s.reader, `${s.name}-revoked`);
    const r = await (await signedGet(key, s.path()))();
    expect(r.status).toBe(200);
    await admin.keys.revoke(key.kid);
    const events = await drain(r);
    const end = events.at(-1);
    expect(end?.event).toBe("end");
    expect(end?.data).toMatchObject({ type: expect.stringMatching(/\/key-unknown$/) });
  }, 90_000);

  it("quarantining the key's subject ends the open stream (quarantined), via the SDK too", async () => {
    const key = await registeredKey(admin, s.reader, `${s.name}-quarantined`);
    const client = t.client(key);
    const abort = new AbortController();
    const iterate = (async () => {
      const it =
        s.name === "incidents"
          ? client.incidents.events({ signal: abort.signal })
          : s.name === "approvals"
            ? client.approvals.events({ signal: abort.signal })
            : client.jobs.events(jobId, { signal: abort.signal });
      for await (const _ of it) {
        // events before the quarantine are not what this test is about
      }
      return undefined;
    })().catch((e: unknown) => e);
    // The stream is open once a request of the key has gone through; then quarantine it.
    await new Promise((r) => setTimeout(r, 500));
    const q = await admin.quarantine.place({ subject: `${s.name}-quarantined`, reason: "test" });
    const timeout = setTimeout(() => abort.abort(), 60_000);
    const err = await iterate;
    clearTimeout(timeout);
    expect(err).toBeInstanceOf(SigilError);
    expect((err as SigilError).code).toBe("quarantined");
    await admin.quarantine.lift(q.quarantine.id, "done");
  }, 90_000);
});

describe("the incidents stream's content", () => {
  it("streams an opened and an acknowledged incident, and resumes after Last-Event-ID", async () => {
    const store = t.incidents;
    if (!store) throw new Error("the node target has an incident store");
    const key = await registeredKey(admin, "auditor", "incidents-reader");
    const r = await (await signedGet(key, "/v1/incidents/events"))();
    expect(r.status).toBe(200);
    const id = await openTestIncident(store, { severity: "medium" });
    await admin.incidents.acknowledge(id, "looking");
    const seen: ServerSentEvent[] = [];
    const body = r.body;
    if (!body) throw new Error("no body");
    for await (const e of readServerSentEvents(body)) {
      seen.push(e);
      if (seen.length === 2) break;
    }
    // One event per change, each carrying the incident as it is when the event is sent.
    expect(seen.map((e) => e.event)).toEqual(["incident", "incident"]);
    expect((seen[1]!.data as { state: string }).state).toBe("acknowledged");
    expect(new Set(seen.map((e) => e.id)).size).toBe(2);
    expect(seen.every((e) => (e.data as { incidentId: string }).incidentId === id)).toBe(true);
    // Resuming after the first: only the second again.
    const resumed: ServerSentEvent[] = [];
    for await (const e of t.client(key).incidents.events({ lastEventId: seen[0]!.id ?? "" })) {
      resumed.push(e);
      break;
    }
    expect(resumed[0]?.id).toBe(seen[1]!.id);
  }, 60_000);
});
