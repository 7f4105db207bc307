// The SDK against a tiny real Hono app (served by @hono/node-server on a real port) whose /v1
// middleware verifies every request with shared/httpsig's verifier and a real replay cache.
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerType, serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type FetchLike, Sigil, SigilError } from "../../sdk";
import { devAdminClient, loadDevAdminKey } from "../../sdk/node";
import { toBase64Url } from "../../shared/encoding";
import { MemoryReplayCache, type Signer, verifyRequest } from "../../shared/httpsig";
import { keyResolver, newSigner, webcryptoVerify } from "../httpsig/helpers";

interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType: string | null;
  body: string;
  keyid: string;
  nonce: string | undefined;
  covered: readonly string[];
}

let server: ServerType;
let baseUrl: string;
let agent: Signer;
let seedSigner: Signer;
const SEED = crypto.getRandomValues(new Uint8Array(32));
const seen: Seen[] = [];
const flaky = new Map<string, number>();

type Env = { Variables: { keyid: string; nonce: string | undefined; covered: readonly string[] } };

function buildApp(signers: () => Signer[]) {
  const app = new Hono<{
    Variables: { keyid: string; nonce: string | undefined; covered: readonly string[] };
  }>();
  const replayCache = new MemoryReplayCache();
  const problem = (status: 400 | 401 | 503, code: string, detail: string, extra: object = {}) =>
    new Response(
      JSON.stringify({
        type: `https://sigil.dev/errors/${code}`,
        title: code,
        status,
        detail,
        ...extra,
      }),
      { status, headers: { "content-type": "application/problem+json" } },
    );

  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/openapi.json", (c) => c.json({ openapi: "3.1.0" }));
  app.get("/.well-known/sigil/keys", (c) =>
    c.json({
      keys: [{ kty: "OKP", crv: "Ed25519", x: toBase64Url(agent.publicKey), kid: agent.kid }],
    }),
  );

  app.use("/v1/*", async (c, next) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    const r = await verifyRequest(
      { method: c.req.method, url: c.req.url, headers: c.req.raw.headers, body },
      { resolveKey: keyResolver(signers()), verify: webcryptoVerify, replayCache },
    );
    if (!r.ok) return problem(401, r.code, r.detail);
    c.set("keyid", r.keyid);
    c.set("nonce", r.nonce);
    c.set("covered", r.coveredComponents);
    await next();
  });

  // kid "flaky-<status>" fails once with that status, then succeeds.
  app.get("/v1/keys/:kid{flaky-.+}", (c) => {
    const kid = c.req.param("kid");
    const n = (flaky.get(kid) ?? 0) + 1;
    flaky.set(kid, n);
    seen.push(record(c, ""));
    const status = Number(kid.slice("flaky-".length));
    if (n === 1) {
      return new Response(
        JSON.stringify({ type: "https://sigil.dev/errors/unavailable", title: "x", status }),
        {
          status,
          headers: { "content-type": "application/problem+json" },
        },
      );
    }
    return c.json({ kid, attempts: n });
  });
  app.post("/v1/keys/:kid/rotate", (c) => {
    seen.push(record(c, ""));
    return problem(503, "unavailable", "never retried");
  });
  app.get("/v1/jobs/slow", async (c) => {
    seen.push(record(c, ""));
    await new Promise((r) => setTimeout(r, 1500));
    return c.json({ late: true });
  });
  app.put("/v1/policies/bad", () =>
    problem(400, "policy-invalid", "parse error", {
      errors: [{ line: 1, column: 5, message: "unexpected" }],
    }),
  );
  app.get("/v1/audit/export", (c) => {
    seen.push(record(c, ""));
    return c.body('{"index":0}\n{"index":1}\n', 200, { "content-type": "application/x-ndjson" });
  });
  app.get("/v1/jobs/:id/events", (c) =>
    streamSSE(c, async (s) => {
      await s.writeSSE({
        event: "queued",
        data: JSON.stringify({ jobId: c.req.param("id") }),
        id: "1",
      });
      await s.writeSSE({ event: "output", data: "line one\nline two", id: "2" });
      await s.writeSSE({
        event: "finished",
        data: JSON.stringify({ status: "succeeded" }),
        id: "3",
      });
    }),
  );
  app.post("/v1/evaluate/batch", async (c) => {
    const b = await c.req.json<{ requests: unknown[] }>();
    return c.json({ results: b.requests.map((_r, i) => ({ decision: "allow", i })) });
  });
  // Everything else echoes what it received, so each SDK method's wire form can be checked.
  app.all("/v1/*", async (c) => {
    const s = record(c, await c.req.text());
    seen.push(s);
    return c.json(s, c.req.method === "POST" ? 201 : 200);
  });
  return app;

  function record(c: Context<Env>, body: string): Seen {
    return {
      method: c.req.method,
      path: new URL(c.req.url).pathname,
      query: c.req.query(),
      contentType: c.req.header("content-type") ?? null,
      body,
      keyid: c.get("keyid"),
      nonce: c.get("nonce"),
      covered: c.get("covered"),
    };
  }
}

beforeAll(async () => {
  agent = await newSigner("agent-1");
  // The same seed the SDK gets as `secretKey`, as a Signer the server can resolve.
  const jwk = await crypto.subtle.exportKey(
    "jwk",
    await crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array([...Buffer.from("302e020100300506032b657004220420", "hex"), ...SEED]),
      { name: "Ed25519" },
      true,
      ["sign"],
    ),
  );
  // Server side only needs the public half.
  seedSigner = {
    kid: "seed-key",
    publicKey: Buffer.from(jwk.x!, "base64url"),
    sign: () => Promise.reject(new Error("server-side record only")),
  };
  const app = buildApp(() => [agent, seedSigner]);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
      baseUrl = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  seen.length = 0;
  flaky.clear();
});

const client = (extra: Partial<ConstructorParameters<typeof Sigil>[0]> = {}) =>
  new Sigil({ baseUrl, signer: agent, retryBaseMs: 10, ...extra });

describe("typed methods hit the routes of docs/http-api.md, signed", () => {
  const J = "application/json";
  const T = "text/plain; charset=utf-8";
  const cases: [
    string,
    (s: Sigil) => Promise<unknown>,
    string,
    string,
    Record<string, string>,
    string | null,
    unknown,
  ][] = [
    [
      "keys.create",
      (s) => s.keys.create({ role: "agent", subject: "bot", publicKey: "abc" }),
      "POST",
      "/v1/keys",
      {},
      J,
      { role: "agent", subject: "bot", publicKey: "abc" },
    ],
    ["keys.revoke", (s) => s.keys.revoke("k1"), "DELETE", "/v1/keys/k1", {}, null, ""],
    ["keys.get", (s) => s.keys.get("k1"), "GET", "/v1/keys/k1", {}, null, ""],
    [
      "policies.put",
      (s) => s.policies.put("p1", "permit all;"),
      "PUT",
      "/v1/policies/p1",
      {},
      T,
      "permit all;",
    ],
    ["policies.list", (s) => s.policies.list(), "GET", "/v1/policies", {}, null, ""],
    ["policies.get", (s) => s.policies.get("p1"), "GET", "/v1/policies/p1", {}, null, ""],
    [
      "policies.versions",
      (s) => s.policies.versions("p1"),
      "GET",
      "/v1/policies/p1/versions",
      {},
      null,
      "",
    ],
    [
      "policies.rollback",
      (s) => s.policies.rollback("p1", 3),
      "POST",
      "/v1/policies/p1/rollback",
      {},
      J,
      { version: 3 },
    ],
    ["policies.delete", (s) => s.policies.delete("p1"), "DELETE", "/v1/policies/p1", {}, null, ""],
    [
      "evaluate",
      (s) => s.evaluate({ action: "read", context: { a: 1 } }),
      "POST",
      "/v1/evaluate",
      {},
      J,
      { action: "read", context: { a: 1 } },
    ],
    [
      "signatures.verify",
      (s) => s.signatures.verify({ kid: "k", message: "AA", signature: "BB" }),
      "POST",
      "/v1/signatures/verify",
      {},
      J,
      { kid: "k", message: "AA", signature: "BB" },
    ],
    [
      "signatures.sign",
      (s) => s.signatures.sign("hi"),
      "POST",
      "/v1/sign",
      {},
      J,
      { message: "aGk" },
    ],
    [
      "audit.append",
      (s) => s.audit.append({ eventType: "x", details: {} }),
      "POST",
      "/v1/audit/events",
      {},
      J,
      { eventType: "x", details: {} },
    ],
    [
      "audit.list",
      (s) => s.audit.list({ from: 5, limit: 2 }),
      "GET",
      "/v1/audit/events",
      { from: "5", limit: "2" },
      null,
      "",
    ],
    ["audit.get", (s) => s.audit.get(7), "GET", "/v1/audit/events/7", {}, null, ""],
    [
      "audit.verify",
      (s) => s.audit.verify({ from: 0, to: 9 }),
      "GET",
      "/v1/audit/verify",
      { from: "0", to: "9" },
      null,
      "",
    ],
    ["audit.checkpoint", (s) => s.audit.checkpoint(), "GET", "/v1/audit/checkpoint", {}, null, ""],
    [
      "audit.inclusionProof",
      (s) => s.audit.inclusionProof({ index: 1, treeSize: 4 }),
      "GET",
      "/v1/audit/proofs/inclusion",
      { index: "1", treeSize: "4" },
      null,
      "",
    ],
    [
      "audit.consistencyProof",
      (s) => s.audit.consistencyProof({ from: 2, to: 4 }),
      "GET",
      "/v1/audit/proofs/consistency",
      { from: "2", to: "4" },
      null,
      "",
    ],
    [
      "risk.assess",
      (s) =>
        s.risk.assess({
          dataSensitivity: 0.9,
          codeTrustLevel: 0.2,
          networkAccess: 1,
          filesystemAccess: 0,
          externalApis: 0,
        }),
      "POST",
      "/v1/risk/assess",
      {},
      J,
      {
        dataSensitivity: 0.9,
        codeTrustLevel: 0.2,
        networkAccess: 1,
        filesystemAccess: 0,
        externalApis: 0,
      },
    ],
    [
      "tools.verify",
      (s) => s.tools.verify({ toolId: "t", domain: "d.example", schema: {}, signature: "s" }),
      "POST",
      "/v1/tools/verify",
      {},
      J,
      { toolId: "t", domain: "d.example", schema: {}, signature: "s" },
    ],
    [
      "tools.putPin",
      (s) => s.tools.putPin("d.example", { publicKeyPem: "PEM" }),
      "PUT",
      "/v1/tools/pins/d.example",
      {},
      J,
      { publicKeyPem: "PEM" },
    ],
    [
      "tools.getPin",
      (s) => s.tools.getPin("d.example"),
      "GET",
      "/v1/tools/pins/d.example",
      {},
      null,
      "",
    ],
    [
      "tools.deletePin",
      (s) => s.tools.deletePin("d.example"),
      "DELETE",
      "/v1/tools/pins/d.example",
      {},
      null,
      "",
    ],
    [
      "tools.deletePin one tool's",
      (s) => s.tools.deletePin("d.example", { toolId: "calc" }),
      "DELETE",
      "/v1/tools/pins/d.example",
      { toolId: "calc" },
      null,
      "",
    ],
    [
      "tools.review",
      (s) => s.tools.review({ name: "t" }),
      "POST",
      "/v1/tools/review",
      {},
      J,
      { schema: { name: "t" } },
    ],
    [
      "jobs.submit",
      (s) => s.jobs.submit({ image: "busybox", command: ["echo", "hi"] }),
      "POST",
      "/v1/jobs",
      {},
      J,
      { image: "busybox", command: ["echo", "hi"] },
    ],
    ["jobs.get", (s) => s.jobs.get("j1"), "GET", "/v1/jobs/j1", {}, null, ""],
    [
      "jobs.wait",
      (s) => s.jobs.wait("j1", 5000),
      "GET",
      "/v1/jobs/j1/wait",
      { timeoutMs: "5000" },
      null,
      "",
    ],
    [
      "jobs.reportResult",
      (s) => s.jobs.reportResult("j1", { exitCode: 0 }),
      "POST",
      "/v1/jobs/j1/result",
      {},
      J,
      { exitCode: 0 },
    ],
  ];

  it.each(cases)("%s", async (_name, call, method, path, query, contentType, body) => {
    const res = await call(client());
    expect(seen).toHaveLength(1);
    const s = seen[0]!;
    expect(s).toMatchObject({ method, path, query, contentType, keyid: "agent-1" });
    expect(typeof body === "string" ? s.body : JSON.parse(s.body)).toEqual(body);
    expect(s.covered).toEqual(expect.arrayContaining(["@method", "@authority", "@path"]));
    if (Object.keys(query).length > 0) expect(s.covered).toContain("@query");
    if (s.body !== "") expect(s.covered).toContain("content-digest");
    expect(res).toMatchObject({ path });
  });

  it("evaluateBatch unwraps results in order", async () => {
    const r = await client().evaluateBatch([
      { action: "a", context: {} },
      { action: "b", context: {} },
    ]);
    expect(r).toEqual([
      { decision: "allow", i: 0 },
      { decision: "allow", i: 1 },
    ]);
  });

  it("audit.export returns the NDJSON text as sent", async () => {
    expect(await client().audit.export({ from: 0 })).toBe('{"index":0}\n{"index":1}\n');
  });

  it("jobs.events yields server-sent events", async () => {
    const events = [];
    for await (const e of client().jobs.events("job-9")) events.push(e);
    expect(events).toEqual([
      { event: "queued", data: { jobId: "job-9" }, id: "1" },
      { event: "output", data: "line one\nline two", id: "2" },
      { event: "finished", data: { status: "succeeded" }, id: "3" },
    ]);
  });

  it("public routes need no key", async () => {
    const anon = new Sigil({ baseUrl });
    expect(await anon.health()).toEqual({ status: "ok" });
    expect(await anon.openapi()).toMatchObject({ openapi: "3.1.0" });
    expect((await anon.wellKnownKeys()).keys[0]).toMatchObject({ kid: "agent-1" });
    await expect(anon.keys.get("k")).rejects.toMatchObject({
      name: "SigilError",
      code: "no-key",
      status: 0,
    });
  });
});

describe("keys and errors", () => {
  it("signs with a raw 32-byte secretKey", async () => {
    const s = new Sigil({ baseUrl, keyId: "seed-key", secretKey: SEED });
    await s.keys.get("x");
    expect(seen[0]).toMatchObject({ keyid: "seed-key" });
  });

  it("an unknown key gets SigilError 401 key-unknown with the problem fields", async () => {
    const stranger = await newSigner("stranger");
    const err = await client({ signer: stranger })
      .keys.get("x")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SigilError);
    expect(err).toMatchObject({
      status: 401,
      code: "key-unknown",
      type: "https://sigil.dev/errors/key-unknown",
      title: "key-unknown",
    });
    expect(seen).toHaveLength(0);
  });

  it("a key claiming another's keyid gets signature-invalid", async () => {
    const stranger = await newSigner("stranger");
    await expect(
      client({ signer: stranger, keyId: "agent-1" }).keys.get("x"),
    ).rejects.toMatchObject({
      status: 401,
      code: "signature-invalid",
    });
  });

  it("validation errors carry `errors`", async () => {
    await expect(client().policies.put("bad", "permit")).rejects.toMatchObject({
      status: 400,
      code: "policy-invalid",
      detail: "parse error",
      errors: [{ line: 1, column: 5, message: "unexpected" }],
    });
  });
});

describe("timeouts and retries", () => {
  it.each([502, 503, 504])(
    "retries an idempotent GET after a %i, re-signed with a fresh nonce",
    async (status) => {
      expect(await client().keys.get(`flaky-${status}`)).toEqual({
        kid: `flaky-${status}`,
        attempts: 2,
      });
      // The server's replay cache would have rejected a reused nonce; check they differ too.
      expect(seen).toHaveLength(2);
      expect(seen[0]!.nonce).not.toBe(seen[1]!.nonce);
    },
  );

  it("does not retry other errors", async () => {
    await expect(client().policies.put("bad", "x")).rejects.toMatchObject({ status: 400 });
    await expect(client().keys.get("flaky-500")).rejects.toMatchObject({ status: 500 });
    expect(flaky.get("flaky-500")).toBe(1);
  });

  it("never retries a POST", async () => {
    await expect(client().keys.rotate("k1", { publicKey: "x" })).rejects.toMatchObject({
      status: 503,
      code: "unavailable",
    });
    expect(seen).toHaveLength(1);
  });

  it("gives up after `retries` extra attempts", async () => {
    await expect(client({ retries: 0 }).keys.get("flaky-503")).rejects.toMatchObject({
      status: 503,
    });
    expect(seen).toHaveLength(1);
  });

  it("times out each attempt and retries idempotent calls", async () => {
    const err = await client({ timeoutMs: 200, retries: 1 })
      .jobs.get("slow")
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "SigilError", code: "timeout", status: 0 });
    expect(seen).toHaveLength(2);
  });

  it("a caller's AbortSignal aborts without retrying", async () => {
    const ac = new AbortController();
    const p = client({ retries: 3 }).jobs.get("slow", { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(p).rejects.toMatchObject({ code: "aborted" });
    expect(seen).toHaveLength(1);
  });

  it("retries network errors on GET, not on POST", async () => {
    let calls = 0;
    const failingOnce: FetchLike = (input, init) => {
      calls++;
      return calls === 1 ? Promise.reject(new TypeError("fetch failed")) : fetch(input, init);
    };
    expect(await client({ fetch: failingOnce }).keys.get("k1")).toMatchObject({
      path: "/v1/keys/k1",
    });
    expect(calls).toBe(2);
    calls = 0;
    await expect(
      client({ fetch: failingOnce }).evaluate({ action: "a", context: {} }),
    ).rejects.toMatchObject({
      code: "network",
    });
    expect(calls).toBe(1);
  });

  it("a refused connection is a network error after the retries", async () => {
    // Port 9 on localhost (discard) is closed here: every attempt is refused.
    const s = new Sigil({
      baseUrl: "http://127.0.0.1:9",
      signer: agent,
      retries: 1,
      retryBaseMs: 1,
    });
    await expect(s.keys.get("k")).rejects.toMatchObject({ code: "network", status: 0 });
  });
});

describe("dev admin key (sdk/node)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sigil-sdk-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("loads <dataDir>/admin-key.json and signs with it", async () => {
    await writeFile(
      join(dir, "admin-key.json"),
      JSON.stringify({
        kid: "seed-key",
        secretKey: toBase64Url(SEED),
        publicJwk: {
          kty: "OKP",
          crv: "Ed25519",
          x: toBase64Url(seedSigner.publicKey),
          kid: "seed-key",
        },
      }),
    );
    await chmod(join(dir, "admin-key.json"), 0o600);
    const key = await loadDevAdminKey(dir);
    expect(key).toMatchObject({ kid: "seed-key", secretKey: SEED });
    const s = await devAdminClient({ baseUrl, dataDir: dir });
    await s.keys.get("abc");
    expect(seen[0]).toMatchObject({ keyid: "seed-key", path: "/v1/keys/abc" });
  });

  it("rejects a missing or malformed key file", async () => {
    await expect(loadDevAdminKey(join(dir, "nope"))).rejects.toThrow(/no dev admin key/);
    await writeFile(join(dir, "admin-key.json"), JSON.stringify({ kid: "k", secretKey: "short" }));
    await expect(loadDevAdminKey(dir)).rejects.toThrow(/malformed/);
  });
});
