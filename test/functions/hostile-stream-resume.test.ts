// Where a server-sent event stream resumes is the client's to say (docs/http-api.md
// "Server-sent events"): a request carrying Last-Event-ID must cover it with its signature, so an
// on-path party can neither add one (skip events) nor change one (replay or skip them). On both
// targets (Node with Redis, the edge under workerd), for the change feeds every target serves.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServerSentEvent, Sigil } from "../../sdk";
import { signRequest } from "../../shared/httpsig";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

const streams = ["/v1/incidents/events", "/v1/approvals/events"] as const;

describe.each(targetNames)("resuming a stream (%s)", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let reader: TestKey;

  beforeAll(async () => {
    t = await startTarget(targetName);
    admin = t.client(t.admin);
    reader = await registeredKey(admin, "auditor", "resume-reader");
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
  });

  /** The headers of a stream GET signed with `signed` headers; `after` is merged in after signing. */
  async function headersFor(
    path: string,
    signed: Record<string, string>,
    after: Record<string, string> = {},
    key: TestKey = reader,
  ): Promise<Record<string, string>> {
    const headers: Record<string, string> = { accept: "text/event-stream", ...signed };
    Object.assign(
      headers,
      await signRequest({ method: "GET", url: `${t.url}${path}`, headers }, key.signer, {
        keyid: key.kid,
      }),
    );
    return { ...headers, ...after };
  }

  async function problemOf(r: Response) {
    expect(r.headers.get("content-type")).toContain("application/problem+json");
    const p = (await r.json()) as { type: string; detail?: string };
    return { status: r.status, type: p.type.split("/").pop(), detail: p.detail };
  }

  describe.each(streams)("%s", (path) => {
    it("covered and valid: the stream opens", async () => {
      const headers = await headersFor(path, { "last-event-id": "0" });
      expect(headers["signature-input"]).toContain('"last-event-id"');
      const abort = new AbortController();
      const r = await fetch(`${t.url}${path}`, { headers, signal: abort.signal });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toContain("text/event-stream");
      abort.abort();
    });

    it("added after signing: 401 auth-required, nothing streamed", async () => {
      const headers = await headersFor(path, {}, { "last-event-id": "0" });
      expect(headers["signature-input"]).not.toContain("last-event-id");
      const p = await problemOf(await fetch(`${t.url}${path}`, { headers }));
      expect(p).toMatchObject({ status: 401, type: "auth-required" });
      expect(p.detail).toContain("last-event-id");
    });

    it("changed after signing: 401 signature-invalid", async () => {
      const headers = await headersFor(path, { "last-event-id": "5" }, { "last-event-id": "0" });
      const p = await problemOf(await fetch(`${t.url}${path}`, { headers }));
      expect(p).toMatchObject({ status: 401, type: "signature-invalid" });
    });

    it("removed after signing: 401 signature-invalid (it was covered)", async () => {
      const { "last-event-id": _gone, ...headers } = await headersFor(path, {
        "last-event-id": "5",
      });
      const p = await problemOf(await fetch(`${t.url}${path}`, { headers }));
      expect(p).toMatchObject({ status: 401, type: "signature-invalid" });
    });

    it("malformed: covered is 400 validation, uncovered 401 auth-required", async () => {
      for (const bad of ["abc", "1 OR 1=1", "1".repeat(8_000), "-1"]) {
        const covered = await headersFor(path, { "last-event-id": bad });
        expect(await problemOf(await fetch(`${t.url}${path}`, { headers: covered }))).toMatchObject(
          { status: 400, type: "validation" },
        );
        const added = await headersFor(path, {}, { "last-event-id": bad });
        expect(await problemOf(await fetch(`${t.url}${path}`, { headers: added }))).toMatchObject({
          status: 401,
          type: "auth-required",
        });
      }
    });

    it("a non-ASCII value (obs-text) is refused, covered or not, never streamed", async () => {
      // Workerd reads header bytes as UTF-8 and Node as Latin-1, so a covered one fails as a
      // signature (edge) or as an id (Node): a refusal either way (docs/http-api.md).
      const covered = await headersFor(path, { "last-event-id": "ü" });
      const r = await fetch(`${t.url}${path}`, { headers: covered });
      expect([400, 401]).toContain(r.status);
      expect((await problemOf(r)).type).toMatch(/^(validation|signature-invalid)$/);
      const added = await headersFor(path, {}, { "last-event-id": "ü" });
      expect(await problemOf(await fetch(`${t.url}${path}`, { headers: added }))).toMatchObject({
        status: 401,
        type: "auth-required",
      });
    });
  });

  it("the SDK covers the Last-Event-ID it sends, and the stream resumes after it", async () => {
    // Two approvals: two changes on the approvals feed.
    await admin.policies.put(
      "resume",
      "policy resume {\n  allow: go\n  require: boss_approval for go\n}\n",
    );
    const agent = t.client(await registeredKey(admin, "agent", "resume-agent"));
    for (const n of [1, 2]) {
      expect((await agent.evaluate({ action: "go", context: { n } })).decision).toBe(
        "require_approval",
      );
    }
    const sent: Headers[] = [];
    const sdk = new Sigil({
      baseUrl: t.url,
      keyId: reader.kid,
      signer: reader.signer,
      retries: 0,
      fetch: (input, init) => {
        sent.push(new Headers(init?.headers));
        return fetch(input, init);
      },
    });
    const firstTwo: ServerSentEvent[] = [];
    for await (const e of sdk.approvals.events({ lastEventId: "0" })) {
      firstTwo.push(e);
      if (firstTwo.length === 2) break;
    }
    expect(firstTwo.map((e) => e.event)).toEqual(["approval", "approval"]);
    const resumed: ServerSentEvent[] = [];
    for await (const e of sdk.approvals.events({ lastEventId: firstTwo[0]!.id ?? "" })) {
      resumed.push(e);
      break;
    }
    expect(resumed[0]?.id).toBe(firstTwo[1]!.id);
    expect(sent.map((h) => h.get("last-event-id"))).toEqual(["0", firstTwo[0]!.id]);
    for (const h of sent) expect(h.get("signature-input")).toContain('"last-event-id"');
  }, 60_000);

  it("a refusal for an uncovered Last-Event-ID is audited as auth.failed", async () => {
    const path = "/v1/approvals/events";
    const key = await registeredKey(admin, "auditor", "resume-audited");
    const r = await fetch(`${t.url}${path}`, {
      headers: await headersFor(path, {}, { "last-event-id": "0" }, key),
    });
    expect(r.status).toBe(401);
    const { treeSize } = await admin.audit.checkpoint();
    const page = await admin.audit.list({ from: Math.max(0, treeSize - 200), limit: 200 });
    const failed = page.events.filter(
      (e) =>
        e.eventType === "auth.failed" &&
        JSON.stringify(e.details).includes("last-event-id") &&
        (e.details as { source?: string }).source === `key:${key.kid}`,
    );
    expect(failed.length).toBeGreaterThan(0);
  });
});
