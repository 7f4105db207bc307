// Hostile input at the edge of the API (issue 15, items 1, 6 and 9), on the Node app and the edge
// app alike: ill-formed Unicode in every string that reaches canonicalisation, JSON under every
// media-type spelling, and event types only Sigil may write.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { securityEvent } from "../../functions/audit-sink";
import { isJsonMediaType, MAX_JSON_DEPTH, scanJson } from "../../functions/middleware/auth";
import type { Sigil } from "../../sdk";
import { eventSeverity, isClientEventType } from "../../shared/audit";
import { toBase64Url, utf8 } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import {
  newKey,
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

const LONE = "\ud800";

describe("scanJson: one pass finds depth and lone surrogates the way JSON.parse decodes them", () => {
  it("agrees with String.prototype.isWellFormed on any string, as a key and as a value", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 12 }), (s) => {
        const text = JSON.stringify({ [s]: [s, { k: s }] });
        expect(scanJson(text, MAX_JSON_DEPTH).ok).toBe(s.isWellFormed());
        // The same with upper-case hex escapes, which JSON.parse reads alike.
        const upper = text.replace(/\\u([0-9a-f]{4})/g, (_m, h: string) => `\\u${h.toUpperCase()}`);
        expect(scanJson(upper, MAX_JSON_DEPTH).ok).toBe(s.isWellFormed());
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['"\\ud83d\\ude00"', true],
    ['"\\uD83D\\uDE00"', true],
    ['"\\\\ud800"', true], // an escaped backslash, then the text "ud800"
    ['"😀"', true],
    ['"\\ud800"', false],
    ['"\\udc00"', false],
    ['"\\udc00\\ud800"', false],
    ['"x\\ud83d"', false],
    ['"\\ud83d\\u0041"', false],
    ['"\\ud83dx\\ude00"', false],
    [`"${LONE}"`, false], // a raw lone surrogate
    [`"\ud83d\ude00"`, true], // a raw pair
  ])("%s → well-formed: %s", (text, ok) => {
    expect(scanJson(`{"a":[${text}]}`, MAX_JSON_DEPTH).ok).toBe(ok);
    expect(JSON.parse(`{"a":[${text}]}`).a[0].isWellFormed()).toBe(ok);
  });

  it("reports too-deep nesting, ignoring brackets inside strings", () => {
    expect(scanJson(`${"[".repeat(65)}${"]".repeat(65)}`, 64)).toEqual({
      ok: false,
      reason: "too-deep",
    });
    expect(scanJson(`["${"[".repeat(100)}"]`, 64).ok).toBe(true);
    expect(scanJson(`["\\"${"[".repeat(100)}"]`, 64).ok).toBe(true);
  });
});

describe("isJsonMediaType: every JSON media type, any letter case", () => {
  it.each([
    ["application/json", true],
    ["Application/JSON", true],
    ["APPLICATION/JSON; charset=UTF-8", true],
    ["application/json ; charset=utf-8", true],
    [" application/json\t", true],
    ["application/x+json", true],
    ["application/vnd.sigil.event+JSON; v=1", true],
    ["application/problem+json", true],
    ["text/plain", false],
    ["application/x-ndjson", false],
    ["application/jsonx", false],
    ["", false],
  ])("%j → %s", (type, json) => {
    expect(isJsonMediaType(type)).toBe(json);
  });

  it("covers every media type Hono's json validator parses", () => {
    // The validator's own test (hono/dist/validator/validator.js) on the type before ';'.
    const honoParses = (t: string) =>
      /^application\/([\w.-]+\+)?json$/i.test(t.split(";")[0]!.trim().toLowerCase());
    fc.assert(
      fc.property(
        fc.constantFrom("application", "Application", "APPLICATION", "text", "app"),
        fc.constantFrom("", "x+", "vnd.a-b+", "X.Y+", "+", "x-"),
        fc.constantFrom("json", "JSON", "Json", "jsonp"),
        fc.constantFrom("", "; charset=utf-8", " ;a=b", "\t"),
        (top, prefix, sub, params) => {
          const t = `${top}/${prefix}${sub}${params}`;
          if (honoParses(t)) expect(isJsonMediaType(t)).toBe(true);
        },
      ),
    );
  });
});

describe("security events: the severity is Sigil's", () => {
  it("a severity in details never overrides the one Sigil assigns", async () => {
    const seen: Record<string, unknown>[] = [];
    await securityEvent(
      async (e) => {
        seen.push(e.details);
        return { eventId: "x", index: 0 };
      },
      "agent-1",
      "key_pin_mismatch",
      "high",
      "pinned key differs",
      { severity: "info", category: "other" },
    );
    expect(seen[0]).toMatchObject({ severity: "high", category: "key_pin_mismatch" });
  });

  it("no event type a client may write carries a severity", () => {
    expect(isClientEventType("security.event")).toBe(false);
    for (const eventType of ["app.alert", "agent.crashed", "tool.invoked"]) {
      expect(isClientEventType(eventType)).toBe(true);
      expect(eventSeverity({ eventType, details: { severity: "critical" } })).toBeUndefined();
    }
    expect(eventSeverity({ eventType: "security.event", details: { severity: "critical" } })).toBe(
      "critical",
    );
  });
});

const typeOf = (json: { type?: string } | null) => json?.type?.split("/").pop();

describe.each(targetNames)("hostile input on %s", (targetName) => {
  let t: Target;
  let admin: Sigil;
  let agentKey: TestKey;
  let agent: Sigil;
  let auditor: Sigil;
  let workerKey: TestKey;

  /** A signed request with any body bytes and any Content-Type. */
  async function send(
    method: string,
    path: string,
    opts: {
      key?: TestKey;
      body?: string | Uint8Array<ArrayBuffer>;
      contentType?: string | null;
    } = {},
  ) {
    const url = `${t.url}${path}`;
    const headers = new Headers();
    if (opts.body !== undefined && opts.contentType !== null)
      headers.set("content-type", opts.contentType ?? "application/json");
    if (opts.key) {
      const sig = await signRequest(
        { method, url, headers, body: opts.body ?? null },
        opts.key.signer,
        { keyid: opts.key.kid },
      );
      for (const [k, v] of Object.entries(sig)) if (v) headers.set(k, v);
    }
    const r = await fetch(url, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: opts.body } : {}),
    });
    const text = await r.text();
    let json: { type?: string; detail?: string; [k: string]: unknown } | null = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { raw: text };
    }
    return { status: r.status, json };
  }

  const treeSize = async () => (await auditor.audit.checkpoint()).treeSize;

  beforeAll(async () => {
    t = await startTarget(targetName);
    admin = t.client(t.admin);
    agentKey = await registeredKey(admin, "agent", "agent-hostile");
    agent = t.client(agentKey);
    auditor = t.client(await registeredKey(admin, "auditor", "auditor-hostile"));
    workerKey = await registeredKey(admin, "worker", "worker-hostile");
  }, 120_000);
  afterAll(async () => t?.stop());

  describe("lone surrogates: 400 validation, nothing appended, nobody else harmed", () => {
    // Every request body field a lone surrogate could carry into an audit event (or a signature
    // base, a policy context, a job envelope). `v` is the string under test.
    type Case = [string, "admin" | "agent" | "worker", string, string, (v: string) => unknown];
    const pem =
      "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgkD2S+XyZLaKP5VAG8JxG6YNACMV\nkJFsvp95yQj+19OsI2HCg2FHeL9jPIy16LGJSdgJ/0VJBD22NAurqOqn1A==\n-----END PUBLIC KEY-----\n";
    const cases: Case[] = [
      ["evaluate action", "agent", "POST", "/v1/evaluate", (v) => ({ action: v, context: {} })],
      [
        "evaluate resource",
        "agent",
        "POST",
        "/v1/evaluate",
        (v) => ({ action: "read", resource: v, context: {} }),
      ],
      [
        "evaluate tags",
        "agent",
        "POST",
        "/v1/evaluate",
        (v) => ({ action: "read", tags: ["ok", v], context: {} }),
      ],
      [
        "evaluate context key",
        "agent",
        "POST",
        "/v1/evaluate",
        (v) => ({ action: "read", context: { user: { [`k${v}`]: 1 } } }),
      ],
      [
        "evaluate context value",
        "agent",
        "POST",
        "/v1/evaluate",
        (v) => ({ action: "read", context: { user: { roles: ["a", v] } } }),
      ],
      [
        "batch item",
        "agent",
        "POST",
        "/v1/evaluate/batch",
        (v) => ({
          requests: [
            { action: "read", context: {} },
            { action: v, context: {} },
          ],
        }),
      ],
      [
        "audit eventType",
        "agent",
        "POST",
        "/v1/audit/events",
        (v) => ({ eventType: `app.${v}`, details: {} }),
      ],
      [
        "audit agentId",
        "admin",
        "POST",
        "/v1/audit/events",
        (v) => ({ eventType: "app.x", agentId: `a${v}`, details: {} }),
      ],
      [
        "audit details key",
        "agent",
        "POST",
        "/v1/audit/events",
        (v) => ({ eventType: "app.x", details: { [v]: 1 } }),
      ],
      [
        "audit details value",
        "agent",
        "POST",
        "/v1/audit/events",
        (v) => ({ eventType: "app.x", details: { s: v } }),
      ],
      [
        "audit details, deep",
        "agent",
        "POST",
        "/v1/audit/events",
        (v) => ({ eventType: "app.x", details: { a: [{ b: { c: [1, v] } }] } }),
      ],
      [
        "keys subject",
        "admin",
        "POST",
        "/v1/keys",
        (v) => ({ role: "agent", subject: `s${v}`, publicKey: toBase64Url(new Uint8Array(32)) }),
      ],
      [
        "tools verify schema value",
        "agent",
        "POST",
        "/v1/tools/verify",
        (v) => ({
          toolId: "calc",
          domain: "tools.example.com",
          schema: { name: "calc", description: v },
          signature: "AAAA",
        }),
      ],
      [
        "tools verify schema key",
        "agent",
        "POST",
        "/v1/tools/verify",
        (v) => ({
          toolId: "calc",
          domain: "tools.example.com",
          schema: { name: "calc", [v]: 1 },
          signature: "AAAA",
        }),
      ],
      [
        "tools verify signature",
        "agent",
        "POST",
        "/v1/tools/verify",
        (v) => ({ toolId: "calc", domain: "tools.example.com", schema: {}, signature: v }),
      ],
      [
        "tools verify canonicalization",
        "agent",
        "POST",
        "/v1/tools/verify",
        (v) => ({
          toolId: "calc",
          domain: "tools.example.com",
          schema: {},
          signature: "AAAA",
          canonicalization: v,
        }),
      ],
      [
        "tools review",
        "agent",
        "POST",
        "/v1/tools/review",
        (v) => ({ schema: { name: "calc", description: `adds ${v}` } }),
      ],
      [
        "pin publicKeyPem",
        "admin",
        "PUT",
        "/v1/tools/pins/tools.example.com",
        (v) => ({ publicKeyPem: pem + v }),
      ],
      ["sign message", "agent", "POST", "/v1/sign", (v) => ({ message: v })],
    ];
    const jobCases: Case[] = [
      ["jobs image", "agent", "POST", "/v1/jobs", (v) => ({ image: `img${v}`, command: ["true"] })],
      [
        "jobs command",
        "agent",
        "POST",
        "/v1/jobs",
        (v) => ({ image: "sigil/python:1", command: ["echo", v] }),
      ],
      [
        "jobs code",
        "agent",
        "POST",
        "/v1/jobs",
        (v) => ({ image: "sigil/python:1", code: `print("${v}")`, language: "python" }),
      ],
      [
        "jobs files",
        "agent",
        "POST",
        "/v1/jobs",
        (v) => ({ image: "sigil/python:1", command: ["true"], files: { [`f${v}.txt`]: v } }),
      ],
      [
        "jobs env",
        "agent",
        "POST",
        "/v1/jobs",
        (v) => ({ image: "sigil/python:1", command: ["true"], env: { A: v } }),
      ],
      [
        "jobs stdin",
        "agent",
        "POST",
        "/v1/jobs",
        (v) => ({ image: "sigil/python:1", command: ["true"], stdin: v }),
      ],
      [
        "job result report",
        "worker",
        "POST",
        "/v1/jobs/01890000-0000-7000-8000-000000000000/result",
        (v) => ({ result: { stdout: v } }),
      ],
    ];

    const keyOf = (who: Case[1]) =>
      who === "admin" ? t.admin : who === "agent" ? agentKey : workerKey;

    it("every string field: 400 validation naming the problem; nothing is appended", async () => {
      const all = targetName === "node" ? [...cases, ...jobCases] : cases;
      const before = await treeSize();
      const failures: string[] = [];
      for (const [name, who, method, path, body] of all) {
        // JSON.stringify writes a lone surrogate as a \u escape, as any JSON client would send it.
        for (const v of [LONE, "\udfff", "x\udc00\ud800y"]) {
          const r = await send(method, path, { key: keyOf(who), body: JSON.stringify(body(v)) });
          if (
            r.status !== 400 ||
            typeOf(r.json) !== "validation" ||
            !/surrogate/.test(r.json?.detail ?? "")
          )
            failures.push(`${name} ${JSON.stringify(v)}: ${r.status} ${JSON.stringify(r.json)}`);
        }
      }
      expect(failures).toEqual([]);
      expect(await treeSize()).toBe(before);
    }, 120_000);

    it("the same bodies with well-formed strings get past the guard", async () => {
      // The control: what the cases above refuse is the surrogate, not the request's shape.
      for (const [name, who, method, path, body] of cases) {
        const r = await send(method, path, {
          key: keyOf(who),
          body: JSON.stringify(body("ok-\ud83d\ude00")),
        });
        expect(
          r.status === 400 && /surrogate/.test(r.json?.detail ?? ""),
          `${name}: ${r.status} ${JSON.stringify(r.json)}`,
        ).toBe(false);
      }
    });

    it("upper-case escapes, keys and escaped pairs are read as JSON.parse reads them", async () => {
      const path = "/v1/audit/events";
      const bad = [
        '{"eventType":"app.x","details":{"s":"\\uD800"}}',
        '{"eventType":"app.x","details":{"\\uDBFF":1}}',
        '{"eventType":"app.x","details":{"s":"\\uD83D\\u0041"}}',
      ];
      for (const body of bad) {
        const r = await send("POST", path, { key: agentKey, body });
        expect([r.status, typeOf(r.json)], body).toEqual([400, "validation"]);
      }
      const good = await send("POST", path, {
        key: agentKey,
        body: '{"eventType":"app.x","details":{"s":"\\uD83D\\uDE00","t":"\\\\ud800"}}',
      });
      expect(good.status).toBe(201);
      const stored = await auditor.audit.get((good.json as { index: number }).index);
      expect(stored.details).toMatchObject({ s: "😀", t: "\\ud800" });
    });

    it("a body that is not UTF-8 is 400 validation, on JSON and on text/plain routes", async () => {
      const before = await treeSize();
      const json = new Uint8Array([
        ...utf8('{"eventType":"app.x","details":{"s":"'),
        0xed,
        0xa0,
        0x80, // U+D800 encoded as if it were a scalar value: not UTF-8
        ...utf8('"}}'),
      ]);
      const r1 = await send("POST", "/v1/audit/events", { key: agentKey, body: json });
      expect([r1.status, typeOf(r1.json)]).toEqual([400, "validation"]);
      const policy = new Uint8Array([
        ...utf8('policy p {\n  allow: read(x) if a == "'),
        0xff,
        34,
        10,
        125,
      ]);
      const r2 = await send("PUT", "/v1/policies/bad-bytes", {
        key: t.admin,
        body: policy,
        contentType: "text/plain",
      });
      expect([r2.status, typeOf(r2.json)]).toEqual([400, "validation"]);
      expect(await treeSize()).toBe(before);
    });

    it("a policy string literal with a lone surrogate escape is 400 policy-invalid", async () => {
      const r = await send("PUT", "/v1/policies/lone", {
        key: t.admin,
        body: 'policy lone {\n  deny: read(x) if user.name == "\\ud800"\n}',
        contentType: "text/plain",
      });
      expect([r.status, typeOf(r.json)]).toEqual([400, "policy-invalid"]);
      expect(JSON.stringify(r.json)).toMatch(/lone surrogate/);
    });

    it("percent-encoded surrogates in paths and queries never decode to one", async () => {
      // decodeURIComponent refuses UTF-8 for a surrogate, so the router keeps the raw text.
      const unauth = await send("POST", "/v1/%ED%A0%80", { body: "{}" });
      expect(unauth.status).toBe(401);
      const key = await send("GET", "/v1/keys/%ED%A0%80", { key: t.admin });
      expect(key.status).toBe(404);
      const q = await send("GET", "/v1/audit/events?from=%ED%A0%80", { key: t.admin });
      expect([q.status, typeOf(q.json)]).toEqual([400, "validation"]);
      const pin = await send("GET", "/v1/tools/pins/%ED%A0%80", { key: t.admin });
      expect(pin.status).toBe(400);
      // The log still works, and the 401 was audited.
      expect((await agent.audit.append({ eventType: "app.after", details: {} })).index).toBe(
        (await treeSize()) - 1,
      );
    });

    it("concurrent innocent appends and evaluations all succeed beside poisoned ones", async () => {
      const good = (i: number) =>
        i % 2 === 0
          ? agent.audit.append({ eventType: "app.innocent", details: { i } }).then(() => 201)
          : agent.evaluate({ action: "read", context: { i } }).then(() => 200);
      const poisoned = (i: number) =>
        i % 2 === 0
          ? agent.audit.append({ eventType: "app.poison", details: { s: LONE, i } }).then(
              () => 201,
              (e: { status: number }) => e.status,
            )
          : agent.evaluate({ action: LONE, context: { i } }).then(
              () => 200,
              (e: { status: number }) => e.status,
            );
      for (let round = 0; round < 3; round++) {
        const statuses = await Promise.all(
          Array.from({ length: 24 }, (_, i) => (i % 6 === 3 ? poisoned(i) : good(i))),
        );
        statuses.forEach((s, i) => {
          expect(s, `request ${i}`).toBe(i % 6 === 3 ? 400 : i % 2 === 0 ? 201 : 200);
        });
      }
      expect((await auditor.audit.verify()).valid).toBe(true);
    });
  });

  describe("every JSON media type is guarded: deep nesting is 400 invalid-json, never 500", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const deepIn = (wrap: (inner: unknown) => unknown) =>
      JSON.stringify(wrap("@")).replace('"@"', deep);
    const routes: [string, string, () => TestKey, string][] = [
      [
        "POST",
        "/v1/audit/events",
        () => agentKey,
        deepIn((x) => ({ eventType: "app.x", details: { x } })),
      ],
      [
        "POST",
        "/v1/tools/review",
        () => agentKey,
        deepIn((x) => ({ schema: { name: "t", inputSchema: x } })),
      ],
      ["POST", "/v1/evaluate", () => agentKey, deepIn((x) => ({ action: "a", context: { x } }))],
    ];
    const types = [
      "application/json",
      "Application/JSON",
      "APPLICATION/JSON",
      "application/json; charset=utf-8",
      "Application/Json;Charset=UTF-8",
      "application/json ; charset=utf-8",
      "application/x+json",
      "application/vnd.sigil+json",
      "application/problem+JSON",
    ];
    it.each(types)("%s", async (contentType) => {
      const before = await treeSize();
      for (const [method, path, key, body] of routes) {
        const r = await send(method, path, { key: key(), body, contentType });
        expect([path, r.status, typeOf(r.json)]).toEqual([path, 400, "invalid-json"]);
        // A lone surrogate is found under every spelling too.
        const lone = await send(method, path, {
          key: key(),
          body: JSON.stringify({ eventType: "app.x", details: { s: LONE } }),
          contentType,
        });
        expect([path, lone.status, typeOf(lone.json)]).toEqual([path, 400, "validation"]);
      }
      expect(await treeSize()).toBe(before);
    });

    it("a body under a type nobody parses as JSON is refused, never 500", async () => {
      for (const contentType of ["text/plain", "application/jsonx", "text/json", null]) {
        const r = await send("POST", "/v1/audit/events", {
          key: agentKey,
          body: deepIn((x) => ({ eventType: "app.x", details: { x } })),
          contentType,
        });
        expect([r.status, typeOf(r.json)], String(contentType)).toEqual([
          415,
          "unsupported-media-type",
        ]);
      }
    });

    it("the unusual spellings still reach the route when the body is fine", async () => {
      for (const contentType of ["Application/JSON", "application/x+json"]) {
        const r = await send("POST", "/v1/audit/events", {
          key: agentKey,
          body: JSON.stringify({ eventType: "app.spelled", details: { contentType } }),
          contentType,
        });
        expect(r.status, contentType).toBe(201);
      }
    });
  });

  describe("event types: clients write only what an agent runtime observes", () => {
    const forged = [
      "sandbox.escape",
      "incident.critical",
      "incident.opened",
      "tool.key_pin_mismatch",
      "tool.verified",
      "security.event",
      "auth.failed",
      "policy.violation",
      "key.revoked",
      "job.completed",
      "approval.granted",
      "signature.verified",
      "x.y",
      "tool.invoked.extra",
      "agentx.y",
    ];
    it.each(forged)("%s → 403 forbidden, audited as such, nothing else appended", async (type) => {
      // Fresh keys per case: auth.failed is aggregated per source and reason, so a key's second
      // 403 within a window is counted into a summary rather than written at once.
      const fresh = {
        agent: await registeredKey(admin, "agent", "agent-forger"),
        admin: await registeredKey(admin, "admin", "admin-forger"),
      };
      for (const who of ["agent", "admin"] as const) {
        const before = await treeSize();
        const r = await send("POST", "/v1/audit/events", {
          key: fresh[who],
          body: JSON.stringify({ eventType: type, details: { severity: "critical" } }),
        });
        expect([who, r.status, typeOf(r.json)]).toEqual([who, 403, "forbidden"]);
        const { events } = await auditor.audit.list({ from: before, limit: 100 });
        expect(events.map((e) => e.eventType)).toEqual(["auth.failed"]);
        expect(events[0]!.details).toMatchObject({ code: "forbidden" });
      }
    });

    it.each(["agent.started", "app.alert", "tool.invoked", "message.routed", "resource.allocated"])(
      "%s → 201; a severity claimed in details is not the event's",
      async (eventType) => {
        const r = await agent.audit.append({ eventType, details: { severity: "critical" } });
        const stored = await auditor.audit.get(r.index);
        expect(stored.eventType).toBe(eventType);
        expect(stored.agentId).toBe("agent-hostile");
        // Kept as the agent wrote it (it is evidence), but never the event's severity.
        expect(stored.details).toMatchObject({ severity: "critical", submittedBy: agentKey.kid });
        expect(eventSeverity(stored)).toBeUndefined();
      },
    );
  });

  it("an unknown key's request is still 401 (the guard runs after authentication)", async () => {
    const r = await send("POST", "/v1/audit/events", {
      key: await newKey(),
      body: JSON.stringify({ eventType: "app.x", details: { s: LONE } }),
    });
    expect([r.status, typeOf(r.json)]).toEqual([401, "key-unknown"]);
  });
});
