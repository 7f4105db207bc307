// Data subjects over HTTP (docs/data-subjects.md, docs/http-api.md "Compliance and data subjects")
// on the Node app (real Redis) and the edge app (real workerd) alike: a client's event is stored
// with the subject's personal fields sealed; an admin exports them decrypted; erasure destroys the
// key, after which the events stay, the chain and every inclusion proof still verify, and nothing
// about the subject is collected again. Wrong roles, ill-formed or oversized ids, bad bodies and a
// replayed erasure are refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuditEventSchema,
  eventJson,
  eventParts,
  hashLeaf,
  openCheckpoint,
  verifyInclusion,
} from "../../shared/audit";
import { verifyEd25519 } from "../../shared/crypto";
import { fromBase64, fromBase64Url } from "../../shared/encoding";
import { ERASED, SEALED_PREFIX } from "../../shared/subjects";
import {
  registeredKey,
  signedRequest,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

const ALICE = "alice@example.com";
const EMAIL = "alice.private@example.org";

describe.each(targetNames)("data subjects on %s", (targetName) => {
  let t: Target;
  let agent: TestKey;
  let auditor: TestKey;

  const signed = async (method: string, path: string, key: TestKey | undefined, body?: string) => ({
    url: `${t.url}${path}`,
    init: await signedRequest(method, `${t.url}${path}`, key, body),
  });
  async function call(method: string, path: string, key: TestKey | undefined, body?: unknown) {
    const req = await signed(
      method,
      path,
      key,
      body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    );
    const r = await fetch(req.url, req.init);
    const text = await r.text();
    let json: Record<string, unknown> & { type?: string } = {};
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: r.status, json };
  }
  const append = (details: Record<string, unknown>) =>
    call("POST", "/v1/audit/events", agent, { eventType: "app.login", details });
  const enc = encodeURIComponent;

  beforeAll(async () => {
    t = await startTarget(targetName, { SIGIL_AUDIT_PERSONAL_FIELDS: '["email"]' });
    const admin = t.client(t.admin);
    agent = await registeredKey(admin, "agent", "agent-s");
    auditor = await registeredKey(admin, "auditor", "auditor-s");
  }, 120_000);
  afterAll(async () => t?.stop());

  it("seals, exports, erases; the chain and inclusion proofs verify after; reads show [erased]", async () => {
    const a = await append({ subject: ALICE, email: EMAIL, action: "login" });
    expect(a.status).toBe(201);
    const b = await append({ subject: ALICE, action: "logout" });
    const other = await append({ subject: "bob", action: "login" });
    expect([b.status, other.status]).toEqual([201, 201]);
    const ia = a.json.index as number;

    // Stored: ciphertext only, and what the log serves is what was hashed and signed.
    const stored = await call("GET", `/v1/audit/events/${ia}`, auditor);
    expect(stored.status).toBe(200);
    const sd = stored.json.details as Record<string, unknown>;
    expect(String(sd.subject).startsWith(SEALED_PREFIX)).toBe(true);
    expect(String(sd.email).startsWith(SEALED_PREFIX)).toBe(true);
    expect(sd.action).toBe("login");
    expect(JSON.stringify(stored.json)).not.toContain("alice");
    expect(stored.json.eventHash).toBe(a.json.eventHash);

    // Art. 15: the admin reads the subject's events decrypted, and only that subject's.
    const ex = await call("GET", `/v1/subjects/${enc(ALICE)}/export`, t.admin);
    expect(ex.status).toBe(200);
    expect(ex.json.state).toBe("active");
    const evs = ex.json.events as { index: number; details: Record<string, unknown> }[];
    expect(evs.map((e) => e.index)).toEqual([ia, b.json.index]);
    expect(evs[0]!.details).toMatchObject({ subject: ALICE, email: EMAIL, action: "login" });
    expect(evs[1]!.details).toMatchObject({ subject: ALICE, action: "logout" });

    // Art. 17.
    const er = await call("POST", `/v1/subjects/${enc(ALICE)}/erase`, t.admin, {
      reason: "data subject request #12",
    });
    expect(er.status).toBe(200);
    expect(er.json).toMatchObject({ state: "erased", previous: "active" });
    const again = await call("POST", `/v1/subjects/${enc(ALICE)}/erase`, t.admin, {
      reason: "asked twice",
    });
    expect(again.json.previous).toBe("erased");

    // The events stay, unchanged, and the whole chain still verifies.
    const after = await call("GET", `/v1/audit/events/${ia}`, auditor);
    expect(after.json).toEqual(stored.json);
    const v = await call("GET", "/v1/audit/verify", auditor);
    expect(v.json).toMatchObject({ valid: true });

    // Every inclusion proof of the subject's events verifies against a newly signed checkpoint.
    const keys = await call("GET", "/.well-known/sigil/keys", undefined);
    const service = (keys.json.keys as { role: string; status: string; x: string }[]).find(
      (k) => k.role === "service" && k.status === "active",
    )!;
    const cp = (await call("GET", "/v1/audit/checkpoint", auditor)).json as {
      checkpoint: string;
      treeSize: number;
    };
    const origin = cp.checkpoint.slice(0, cp.checkpoint.indexOf("\n"));
    const opened = await openCheckpoint(
      cp.checkpoint,
      [{ name: origin, publicKey: fromBase64Url(service.x) }],
      verifyEd25519,
    );
    for (const i of [ia, b.json.index as number]) {
      const ev = (await call("GET", `/v1/audit/events/${i}`, auditor)).json;
      const leaf = hashLeaf(eventJson(eventParts(AuditEventSchema.parse(ev))));
      const p = await call(
        "GET",
        `/v1/audit/proofs/inclusion?index=${i}&treeSize=${cp.treeSize}`,
        auditor,
      );
      const proof = (p.json.proof as string[]).map(fromBase64);
      verifyInclusion(i, cp.treeSize, leaf, proof, opened.rootHash);
    }

    // After erasure: nothing links the id to its events; writes about it record [erased].
    const ex2 = await call("GET", `/v1/subjects/${enc(ALICE)}/export`, t.admin);
    expect(ex2.json).toMatchObject({ state: "erased", events: [] });
    const late = await append({ subject: ALICE, email: "new@example.org", action: "login" });
    expect(late.status).toBe(201);
    const lateEv = await call("GET", `/v1/audit/events/${late.json.index}`, auditor);
    expect(lateEv.json.details).toMatchObject({ subject: ERASED, email: ERASED, action: "login" });
    // Bob is untouched.
    const bob = await call("GET", "/v1/subjects/bob/export", t.admin);
    expect((bob.json.events as { details: unknown }[])[0]!.details).toMatchObject({
      subject: "bob",
    });

    // The erasure and the exports are audited without the id.
    const list = await call("GET", `/v1/audit/events?from=${ia}&limit=1000`, auditor);
    const types = (list.json.events as { eventType: string; details: unknown }[]).filter((e) =>
      e.eventType.startsWith("subject."),
    );
    expect(types.map((e) => e.eventType)).toEqual(
      expect.arrayContaining(["subject.exported", "subject.erased"]),
    );
    expect(JSON.stringify(types)).not.toContain("alice");
  });

  it("GET /openapi.json describes both routes from their schemas", async () => {
    const doc = (await (await fetch(`${t.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    expect(doc.paths["/v1/subjects/{id}/export"]?.get).toBeDefined();
    expect(doc.paths["/v1/subjects/{id}/erase"]?.post?.requestBody).toBeDefined();
  });

  it("an unknown subject exports nothing and is not created by looking", async () => {
    const r = await call("GET", "/v1/subjects/nobody-ever/export", t.admin);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ state: "unknown", events: [], next: null });
  });

  it("refuses wrong roles", async () => {
    for (const key of [agent, auditor]) {
      expect((await call("GET", "/v1/subjects/x/export", key)).json.type).toMatch(/forbidden$/);
      const e = await call("POST", "/v1/subjects/x/erase", key, { reason: "r" });
      expect(e.status).toBe(403);
    }
    expect((await call("GET", "/v1/subjects/x/export", undefined)).status).toBe(401);
  });

  it("refuses ill-formed and oversized ids and bad bodies", async () => {
    const bad = [
      "%ED%A0%80", // a lone surrogate, UTF-8-encoded
      "%C0%AF", // overlong
      "%FF",
      "a%00b",
      "x".repeat(257),
      `${"\u00e9".repeat(257)}`,
    ];
    for (const id of bad) {
      const path = `/v1/subjects/${id.startsWith("%") || id.includes("%") ? id : enc(id)}/export`;
      const r = await call("GET", path, t.admin);
      expect([r.status, r.json.type]).toEqual([400, expect.stringMatching(/validation$/)]);
    }
    const e = await call("POST", "/v1/subjects/%ED%A0%80/erase", t.admin, { reason: "r" });
    expect(e.status).toBe(400);
    for (const body of [
      {},
      { reason: "" },
      { reason: "r", extra: 1 },
      { reason: "x".repeat(1025) },
      '{"reason":"\\ud800"}',
    ]) {
      const r = await call("POST", "/v1/subjects/carol/erase", t.admin, body);
      expect(r.status).toBe(400);
    }
    // Nothing was erased by the refused requests.
    expect((await call("GET", "/v1/subjects/carol/export", t.admin)).json.state).toBe("unknown");
    // Personal fields need a subject to be sealed for; a subject id must be a valid one.
    for (const details of [
      { email: "e@x" },
      { subject: 42 },
      { subject: "" },
      { subject: "s".repeat(257) },
      { subject: "a\u0007b" },
      { subject: `${SEALED_PREFIX}AAAAAAAAAAAAAAAAAAAAAA:AAAA` },
    ]) {
      expect((await append(details)).status).toBe(400);
    }
    expect(
      (await append({ subject: "dave", email: `${SEALED_PREFIX}AAAAAAAAAAAAAAAAAAAAAA:AAAA` }))
        .status,
    ).toBe(400);
  });

  it("a replayed erasure is refused", async () => {
    const body = JSON.stringify({ reason: "once" });
    const req = await signed("POST", `/v1/subjects/erin/erase`, t.admin, body);
    expect((await fetch(req.url, req.init)).status).toBe(200);
    const r = await fetch(req.url, req.init);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { type: string }).type).toMatch(/replay$/);
  });
});
