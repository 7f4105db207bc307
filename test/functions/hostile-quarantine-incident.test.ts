// A manual quarantine naming the incident it answers (`POST /v1/quarantine` `incidentId`,
// docs/http-api.md "Quarantine"), on both targets (Node with Redis, the edge under workerd): the id
// is stored on the record and in the `quarantine.placed` audit event; an unknown incident is 404
// and places nothing; a malformed, overlong or ill-formed id is 400; only admins place; a replayed
// signed place is refused and stores nothing twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Quarantine, Sigil } from "../../sdk";
import { openTestIncident } from "../support/incidents";
import {
  registeredKey,
  signedRequest,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

const UNKNOWN = "01890000-0000-7000-8000-000000000000";

describe.each(targetNames)("quarantine linked to an incident (%s)", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let incidentId: string;

  /**
   * An incident that exists: opened in the store on Node; on the edge (whose store the test cannot
   * reach) by detection, from a replayed request of a throwaway key (docs/incidents.md).
   */
  async function knownIncident(): Promise<string> {
    if (t.incidents) return openTestIncident(t.incidents, { subject: "qi-incident" });
    const replayer = await registeredKey(admin, "agent", "qi-replayer");
    const url = `${t.url}/v1/audit/checkpoint`;
    const init = await signedRequest("GET", url, replayer);
    await fetch(url, init);
    expect((await fetch(url, init)).status).toBe(401);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const found = (await admin.incidents.list()).incidents.find((i) =>
        i.keys.includes(replayer.kid),
      );
      if (found) return found.incidentId;
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new Error("no incident opened for the replayed request");
  }

  beforeAll(async () => {
    t = await startTarget(
      targetName,
      targetName === "edge" ? { SIGIL_INCIDENTS_ENABLED: "true" } : {},
    );
    admin = t.client(t.admin);
    incidentId = await knownIncident();
  }, 180_000);
  afterAll(async () => {
    await t?.stop();
  });

  /** A place signed by `key`; `send` may be called again to replay the very same request. */
  async function signedPlace(key: TestKey, body: string) {
    const url = `${t.url}/v1/quarantine`;
    const init = await signedRequest("POST", url, key, body);
    return async () => {
      const r = await fetch(url, init);
      const text = await r.text();
      return {
        status: r.status,
        json: (text ? JSON.parse(text) : {}) as { type?: string; [k: string]: unknown },
      };
    };
  }
  const place = async (key: TestKey, body: Record<string, unknown> | string) =>
    (await signedPlace(key, typeof body === "string" ? body : JSON.stringify(body)))();
  const typeOf = (j: { type?: string }) => j.type?.slice(j.type.lastIndexOf("/") + 1);

  /** The active quarantines of this subject. */
  async function activeOf(subject: string): Promise<Quarantine[]> {
    const { quarantines } = await admin.quarantine.list({ active: "true", limit: 500 });
    return quarantines.filter((q) => q.target.kind === "subject" && q.target.subject === subject);
  }

  it("stores the incident on the record, in the list and in the quarantine.placed event", async () => {
    const placed = await place(t.admin, {
      subject: "qi-linked",
      reason: "answers the incident",
      incidentId,
    });
    expect(placed.status).toBe(201);
    const q = placed.json.quarantine as Quarantine;
    expect(q).toMatchObject({ incidentId, active: true, reason: "answers the incident" });
    expect((await activeOf("qi-linked")).map((x) => x.incidentId)).toEqual([incidentId]);
    const { treeSize } = await admin.audit.checkpoint();
    const page = await admin.audit.list({ from: Math.max(0, treeSize - 50), limit: 50 });
    const events = page.events.filter(
      (e) => (e.details as { quarantineId?: string }).quarantineId === q.id,
    );
    expect(
      events.map((e) => [e.eventType, (e.details as { incidentId?: string }).incidentId]),
    ).toEqual([["quarantine.placed", incidentId]]);
  });

  it("the SDK names it; placing again on the same target keeps the record in force as it was", async () => {
    const first = await admin.quarantine.place({ kid: "qi-kid-1", reason: "r", incidentId });
    expect(first.quarantine.incidentId).toBe(incidentId);
    const plain = await admin.quarantine.place({ kid: "qi-kid-2", reason: "r" });
    expect(plain.quarantine.incidentId).toBeUndefined();
    const again = await place(t.admin, { kid: "qi-kid-2", reason: "later", incidentId });
    expect(again.status).toBe(200);
    expect((again.json.quarantine as Quarantine).id).toBe(plain.quarantine.id);
    expect((again.json.quarantine as Quarantine).incidentId).toBeUndefined();
  });

  it("GET /openapi.json describes incidentId (from the zod schema) and the 404", async () => {
    const doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
    };
    const post = doc.paths["/v1/quarantine"]?.post as {
      requestBody: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
      responses: Record<string, unknown>;
    };
    const props = post.requestBody.content["application/json"]!.schema.properties;
    expect(props.incidentId).toMatchObject({ type: "string", pattern: expect.any(String) });
    expect(post.responses).toHaveProperty("404");
  });

  it("an unknown incident is 404 not-found, and nothing is placed", async () => {
    const r = await place(t.admin, { subject: "qi-unknown", reason: "r", incidentId: UNKNOWN });
    expect(r.status).toBe(404);
    expect(typeOf(r.json)).toBe("not-found");
    expect(String(r.json.detail)).toContain(UNKNOWN);
    expect(await activeOf("qi-unknown")).toEqual([]);
  });

  it("malformed, overlong or ill-formed ids are 400 validation, and nothing is placed", async () => {
    const bad: unknown[] = [
      "not-a-uuid",
      incidentId.toUpperCase(),
      `${incidentId}0`,
      ` ${incidentId}`,
      "a".repeat(100_000),
      "",
      42,
      null,
      { id: incidentId },
      [incidentId],
      "\ud800",
    ];
    for (const incident of bad) {
      const r = await place(t.admin, { subject: "qi-bad", reason: "r", incidentId: incident });
      expect(r.status, JSON.stringify(incident).slice(0, 40)).toBe(400);
      expect(typeOf(r.json)).toBe("validation");
    }
    // A lone surrogate escaped raw in the body (JSON.stringify would escape it the same way).
    const raw = await place(
      t.admin,
      `{"subject":"qi-bad","reason":"r","incidentId":"${incidentId.slice(0, -1)}\\udc00"}`,
    );
    expect(raw.status).toBe(400);
    expect(await activeOf("qi-bad")).toEqual([]);
  });

  it("only admins place, with or without an incident: agents and auditors are 403", async () => {
    const agent = await registeredKey(admin, "agent", "qi-agent");
    const auditor = await registeredKey(admin, "auditor", "qi-auditor");
    for (const key of [agent, auditor]) {
      const r = await place(key, { subject: "qi-victim", reason: "spite", incidentId });
      expect(r.status).toBe(403);
      expect(typeOf(r.json)).toBe("forbidden");
      // An unknown incident does not tell a non-admin anything either: the role is checked first.
      const u = await place(key, { subject: "qi-victim", reason: "spite", incidentId: UNKNOWN });
      expect(u.status).toBe(403);
    }
    expect(await activeOf("qi-victim")).toEqual([]);
  });

  it("a replayed place is 401 replay and stores one record, audited once", async () => {
    // Another admin replays: detection may isolate its key (docs/incidents.md), not the test's.
    const second = await registeredKey(admin, "admin", "qi-admin-2");
    const send = await signedPlace(
      second,
      JSON.stringify({ subject: "qi-replayed", reason: "once", incidentId }),
    );
    const first = await send();
    expect(first.status).toBe(201);
    const again = await send();
    expect(again.status).toBe(401);
    expect(typeOf(again.json)).toBe("replay");
    const active = await activeOf("qi-replayed");
    expect(active).toHaveLength(1);
    const { treeSize } = await admin.audit.checkpoint();
    const page = await admin.audit.list({ from: Math.max(0, treeSize - 50), limit: 50 });
    expect(
      page.events.filter(
        (e) =>
          e.eventType === "quarantine.placed" &&
          (e.details as { quarantineId?: string }).quarantineId === active[0]!.id,
      ),
    ).toHaveLength(1);
  });
});
