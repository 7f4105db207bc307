import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { utf8 } from "../../shared/encoding";
import {
  buildSignatureBase,
  createContentDigest,
  type HttpRequestParts,
  MemoryReplayCache,
  normalizeRequest,
  type ReplayCache,
  type Signer,
  type SignOptions,
  serializeSignatureFields,
  signRequest,
  type VerifyOptions,
  verifyRequest,
} from "../../shared/httpsig";
import { keyResolver, newSigner, webcryptoVerify } from "./helpers";

const NOW_MS = 1_700_000_000_000;
const NOW = NOW_MS / 1000;
let alice: Signer;
let bob: Signer; // revoked
let mallory: Signer; // unknown to the service

beforeAll(async () => {
  [alice, bob, mallory] = await Promise.all([
    newSigner("alice"),
    newSigner("bob"),
    newSigner("mallory"),
  ]);
});

interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

const post = (body = '{"action":"read"}'): Req => ({
  method: "POST",
  url: "https://sigil.test/v1/evaluate",
  headers: { "content-type": "application/json" },
  body,
});

/** post() with the Content-Digest header already set, for signRaw. */
function postWithDigest(): Req {
  const req = post();
  return {
    ...req,
    headers: { ...req.headers, "content-digest": createContentDigest(utf8(String(req.body))) },
  };
}

async function signed(
  req: Req,
  signer: Signer = alice,
  opts: Partial<SignOptions> = {},
): Promise<Req> {
  const h = await signRequest(req, signer, { keyid: signer.kid, created: NOW, ...opts });
  return { ...req, headers: { ...req.headers, ...h } };
}

function options(overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    resolveKey: keyResolver([alice, bob], ["bob"]),
    verify: webcryptoVerify,
    replayCache: new MemoryReplayCache(),
    now: () => NOW_MS,
    ...overrides,
  };
}

const verify = (req: HttpRequestParts, overrides: Partial<VerifyOptions> = {}) =>
  verifyRequest(req, options(overrides));

/** Signs with arbitrary components/params (for cases signRequest will not produce). */
async function signRaw(
  req: Req,
  components: string[],
  params: Map<string, string | number>,
  signer = alice,
) {
  const base = buildSignatureBase(components, params, normalizeRequest(req));
  const f = serializeSignatureFields("sig1", components, params, await signer.sign(utf8(base)));
  return {
    ...req,
    headers: { ...req.headers, "signature-input": f.signatureInput, signature: f.signature },
  };
}

const stdParams = (extra: Record<string, string | number> = {}) =>
  new Map<string, string | number>(
    Object.entries({ created: NOW, keyid: "alice", alg: "ed25519", nonce: "n-123456", ...extra }),
  );

describe("round trips", () => {
  it("POST with a JSON body", async () => {
    const req = await signed(post());
    expect(req.headers["content-digest"]).toMatch(/^sha-256=:/);
    const r = await verify(req);
    expect(r).toMatchObject({
      ok: true,
      keyid: "alice",
      label: "sig1",
      created: NOW,
      coveredComponents: ["@method", "@authority", "@path", "content-digest"],
      key: { status: "active" },
    });
    if (r.ok) expect(r.nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it("GET with a query and no body (no Content-Digest)", async () => {
    const req = await signed({
      method: "GET",
      url: "http://127.0.0.1:8787/v1/audit/events?from=3&limit=10",
      headers: {},
    });
    expect(req.headers["content-digest"]).toBeUndefined();
    expect(await verify(req)).toMatchObject({
      ok: true,
      coveredComponents: ["@method", "@authority", "@path", "@query"],
    });
  });

  it("byte bodies, Headers instances, sha-512 digests, a label and extra components", async () => {
    const body = new Uint8Array([0, 1, 2, 255]);
    const h = await signRequest(
      {
        method: "PUT",
        url: "https://sigil.test/v1/policies/p",
        headers: { "content-type": "text/plain" },
        body,
      },
      alice,
      {
        keyid: "alice",
        created: NOW,
        label: "agent",
        digestAlgorithm: "sha-512",
        components: [
          "@method",
          "@target-uri",
          "@authority",
          "@path",
          "content-digest",
          "content-type",
        ],
      },
    );
    const headers = new Headers({ "content-type": "text/plain", ...h });
    const r = await verify({
      method: "PUT",
      url: "https://sigil.test/v1/policies/p",
      headers,
      body: body.buffer,
    });
    expect(r).toMatchObject({ ok: true, label: "agent" });
  });

  it("signing leaves a caller's Headers untouched; verifying reads a Headers without copying it", async () => {
    const headers = new Headers({ "content-type": "application/json" });
    const body = '{"a":1}';
    const h = await signRequest(
      { method: "POST", url: "https://sigil.test/v1/evaluate", headers, body },
      alice,
      {
        keyid: "alice",
        created: NOW,
      },
    );
    expect([...headers.keys()]).toEqual(["content-type"]);
    for (const [k, v] of Object.entries(h)) headers.set(k, v);
    // A Headers whose get() is all the verifier may use (the Node adapter's is lazy like this).
    const reads: string[] = [];
    const lazy = new Proxy(headers, {
      get(target, prop) {
        if (prop === "get")
          return (name: string) => {
            reads.push(name);
            return target.get(name);
          };
        if (prop === Symbol.iterator || prop === "entries" || prop === "forEach")
          throw new Error(`headers were iterated (${String(prop)})`);
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    expect(
      await verify({ method: "POST", url: "https://sigil.test/v1/evaluate", headers: lazy, body }),
    ).toMatchObject({
      ok: true,
    });
    expect(reads).toContain("signature-input");
  });

  it("picks the signature named by options.label among several", async () => {
    const a = await signed(post(), alice, { label: "a", nonce: "nonce-a-1" });
    const b = await signRequest(post(), mallory, { keyid: "mallory", created: NOW, label: "m" });
    const req = {
      ...a,
      headers: {
        ...a.headers,
        "signature-input": `${b["signature-input"]}, ${a.headers["signature-input"]}`,
        signature: `${b.signature}, ${a.headers.signature}`,
      },
    };
    expect(await verify(req)).toMatchObject({ ok: false, code: "key-unknown" }); // first = mallory
    expect(await verify(req, { label: "a" })).toMatchObject({ ok: true, keyid: "alice" });
    expect(await verify(req, { label: "zzz" })).toMatchObject({ ok: false, code: "auth-required" });
  });

  it("accepts created within the skew in both directions", async () => {
    expect(await verify(await signed(post(), alice, { created: NOW - 299 }))).toMatchObject({
      ok: true,
    });
    expect(await verify(await signed(post(), alice, { created: NOW + 299 }))).toMatchObject({
      ok: true,
    });
  });

  it("property: any signed request verifies; any body change is rejected", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "POST", "PUT", "DELETE"),
        fc.webPath(),
        fc.option(fc.webQueryParameters(), { nil: undefined }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.nat(),
        async (method, path, query, body, flip) => {
          const url = `https://sigil.test${path.startsWith("/") ? path : `/${path}`}${query ? `?${query}` : ""}`;
          const req = await signed({ method, url, headers: {}, body });
          expect(await verify(req)).toMatchObject({ ok: true });
          const tampered = new Uint8Array(body);
          const i = flip % body.length;
          tampered[i] = tampered[i]! ^ 1;
          expect(await verify({ ...req, body: tampered })).toMatchObject({
            ok: false,
            code: "signature-invalid",
          });
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe("attacks map to stable codes", () => {
  it("no signature → auth-required", async () => {
    expect(await verify(post())).toMatchObject({ ok: false, code: "auth-required" });
    const r = await signed(post());
    const { signature: _s, ...onlyInput } = r.headers;
    expect(await verify({ ...r, headers: onlyInput })).toMatchObject({
      ok: false,
      code: "auth-required",
    });
  });

  it.each([
    ["unparseable Signature-Input", { "signature-input": "sig1=(" }],
    ["Signature not a byte sequence", { signature: 'sig1="abc"' }],
    ["labels that do not match", { signature: "other=:AAAA:" }],
    ["item instead of inner list", { "signature-input": 'sig1="@method";created=1' }],
    ["unparseable component", { "signature-input": 'sig1=(@method);created=1;keyid="alice"' }],
    ["token component", { "signature-input": 'sig1=(method);created=1;keyid="alice";nonce="x"' }],
    [
      "component parameters",
      { "signature-input": 'sig1=("content-type";sf);created=1;keyid="alice";nonce="x"' },
    ],
    [
      "duplicate components",
      { "signature-input": 'sig1=("@method" "@method");created=1;keyid="alice";nonce="x"' },
    ],
    ["oversized header", { "signature-input": `sig1=();keyid="${"a".repeat(9000)}"` }],
  ])("malformed: %s → auth-required", async (_name, patch) => {
    const r = await signed(post());
    expect(await verify({ ...r, headers: { ...r.headers, ...patch } })).toMatchObject({
      ok: false,
      code: "auth-required",
    });
  });

  it.each([
    ["keyid missing", { keyid: undefined }],
    ["keyid as a number", { keyid: 7 }],
    ["created missing", { created: undefined }],
    ["created not an integer", { created: "1700000000" }],
    ["nonce missing", { nonce: undefined }],
    ["nonce empty", { nonce: "" }],
  ])("bad parameters: %s → auth-required", async (_name, extra) => {
    const params = stdParams();
    for (const [k, val] of Object.entries(extra)) {
      if (val === undefined) params.delete(k);
      else params.set(k, val);
    }
    const full = await signRaw(
      postWithDigest(),
      ["@method", "@authority", "@path", "content-digest"],
      params,
    );
    expect(await verify(full)).toMatchObject({ ok: false, code: "auth-required" });
    // Control: the unmodified parameters verify, so the tampered one is what failed.
    const control = await signRaw(
      postWithDigest(),
      ["@method", "@authority", "@path", "content-digest"],
      stdParams(),
    );
    expect(await verify(control)).toMatchObject({ ok: true });
  });

  it("unknown key → key-unknown; revoked key → key-unknown", async () => {
    expect(await verify(await signed(post(), mallory))).toMatchObject({
      ok: false,
      code: "key-unknown",
      keyid: "mallory",
    });
    const r = await verify(await signed(post(), bob));
    expect(r).toMatchObject({ ok: false, code: "key-unknown", keyid: "bob" });
    if (!r.ok) expect(r.detail).toMatch(/revoked/);
  });

  it("a key claimed under another keyid → signature-invalid", async () => {
    expect(await verify(await signed(post(), mallory, { keyid: "alice" }))).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
  });

  it("body changed after signing → signature-invalid (with or without a recomputed digest)", async () => {
    const r = await signed(post('{"action":"read"}'));
    expect(await verify({ ...r, body: '{"action":"wipe"}' })).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
    const forged = await signed(post('{"action":"wipe"}'), mallory);
    const swapped = {
      ...r,
      body: forged.body,
      headers: { ...r.headers, "content-digest": forged.headers["content-digest"]! },
    };
    expect(await verify(swapped)).toMatchObject({ ok: false, code: "signature-invalid" });
  });

  it("body added to a body-less signed request → auth-required (content-digest not covered)", async () => {
    const r = await signed({ method: "DELETE", url: "https://sigil.test/v1/keys/k1", headers: {} });
    expect(await verify({ ...r, body: "{}" })).toMatchObject({ ok: false, code: "auth-required" });
  });

  it("Content-Digest removed → signature-invalid; malformed → auth-required", async () => {
    const r = await signed(post());
    const { "content-digest": _d, ...rest } = r.headers;
    expect(await verify({ ...r, headers: rest })).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
    expect(
      await verify({ ...r, headers: { ...r.headers, "content-digest": "sha-256=nope" } }),
    ).toMatchObject({
      ok: false,
      code: "auth-required",
    });
  });

  it.each([
    ["content-digest left out", post(), ["@method", "@authority", "@path"]],
    ["@authority left out", post(), ["@method", "@path", "content-digest"]],
    ["@method left out", post(), ["@authority", "@path", "content-digest"]],
    ["@path left out", post(), ["@method", "@authority", "content-digest"]],
    [
      "@query left out",
      { method: "GET", url: "https://sigil.test/v1/audit/verify?from=0&to=9", headers: {} },
      ["@method", "@authority", "@path"],
    ],
  ] as const)("required component not covered: %s → auth-required", async (_n, req, components) => {
    const r = await signed(req, alice, { components });
    const res = await verify(r);
    expect(res).toMatchObject({ ok: false, code: "auth-required" });
  });

  describe("Last-Event-ID (where a stream resumes) must be covered when present", () => {
    const stream = (lastEventId?: string): Req => ({
      method: "GET",
      url: "https://sigil.test/v1/incidents/events",
      headers: {
        accept: "text/event-stream",
        ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}),
      },
    });

    it("signRequest covers it by default, and the request verifies", async () => {
      const r = await signed(stream("17-0"));
      expect(r.headers["signature-input"]).toContain('"last-event-id"');
      expect(await verify(r)).toMatchObject({
        ok: true,
        coveredComponents: ["@method", "@authority", "@path", "last-event-id"],
      });
    });

    it("added after signing → auth-required", async () => {
      const r = await signed(stream());
      expect(r.headers["signature-input"]).not.toContain("last-event-id");
      const added = { ...r, headers: { ...r.headers, "last-event-id": "0" } };
      expect(await verify(added)).toMatchObject({
        ok: false,
        code: "auth-required",
        detail: expect.stringContaining("last-event-id"),
      });
    });

    it("present but left out of the covered components → auth-required", async () => {
      const r = await signed(stream("17-0"), alice, {
        components: ["@method", "@authority", "@path"],
      });
      expect(await verify(r)).toMatchObject({ ok: false, code: "auth-required" });
    });

    it("changed or removed after signing → signature-invalid", async () => {
      const r = await signed(stream("17-0"));
      const changed = { ...r, headers: { ...r.headers, "last-event-id": "16-0" } };
      expect(await verify(changed)).toMatchObject({ ok: false, code: "signature-invalid" });
      const { "last-event-id": _dropped, ...rest } = r.headers;
      expect(await verify({ ...r, headers: rest })).toMatchObject({
        ok: false,
        code: "signature-invalid",
      });
    });
  });

  it("unsupported component → auth-required", async () => {
    const r = await signed(post(), alice, {
      components: ["@method", "@authority", "@path", "content-digest"],
    });
    const bad = r.headers["signature-input"]!.replace('"@path"', '"@path" "@status"');
    expect(await verify({ ...r, headers: { ...r.headers, "signature-input": bad } })).toMatchObject(
      {
        ok: false,
        code: "auth-required",
      },
    );
  });

  it.each([
    ["method", { method: "PUT" }],
    ["path", { url: "https://sigil.test/v1/evaluate/batch" }],
    ["authority", { url: "https://evil.test/v1/evaluate" }],
    ["query added", { url: "https://sigil.test/v1/evaluate?x=1" }],
  ])("tampered %s → rejected", async (_n, patch) => {
    const r = await signed(post());
    const res = await verify({ ...r, ...patch });
    expect(res.ok).toBe(false);
    // A query added after signing is caught by policy (it is not covered) before the signature.
    if (!res.ok)
      expect(res.code).toBe(_n === "query added" ? "auth-required" : "signature-invalid");
  });

  it("covered extra header removed or changed → signature-invalid", async () => {
    const r = await signed(post(), alice, {
      components: ["@method", "@authority", "@path", "content-digest", "content-type"],
    });
    const { "content-type": _ct, ...rest } = r.headers;
    expect(await verify({ ...r, headers: rest })).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
    expect(
      await verify({ ...r, headers: { ...r.headers, "content-type": "text/plain" } }),
    ).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
  });

  it("replayed nonce → replay", async () => {
    const cache = new MemoryReplayCache();
    const r = await signed(post());
    expect(await verify(r, { replayCache: cache })).toMatchObject({ ok: true });
    expect(await verify(r, { replayCache: cache })).toMatchObject({ ok: false, code: "replay" });
    // The same nonce under another key is that key's own business.
    const b = await signed(post(), alice, { nonce: "shared-nonce" });
    const c = await signed(post(), mallory, { nonce: "shared-nonce" });
    expect(await verify(b, { replayCache: cache })).toMatchObject({ ok: true });
    expect(
      await verify(c, { replayCache: cache, resolveKey: keyResolver([mallory]) }),
    ).toMatchObject({ ok: true });
  });

  it("deferNonce: the nonce is left to the caller, with how long to keep it", async () => {
    const cache = new MemoryReplayCache();
    const r = await signed(post(), alice, { created: NOW - 100 });
    const first = await verify(r, { replayCache: cache, deferNonce: true });
    expect(first).toMatchObject({ ok: true, nonceTtlSeconds: 300 - 100 + 1 });
    // Nothing was stored: verifying again still passes, until the caller reserves it.
    expect(await verify(r, { replayCache: cache, deferNonce: true })).toMatchObject({ ok: true });
    expect(await verify(r, { replayCache: cache })).toMatchObject({ ok: true });
    expect(await verify(r, { replayCache: cache })).toMatchObject({ ok: false, code: "replay" });
  });

  it("created too old / in the future / expired → replay", async () => {
    expect(await verify(await signed(post(), alice, { created: NOW - 301 }))).toMatchObject({
      ok: false,
      code: "replay",
    });
    expect(await verify(await signed(post(), alice, { created: NOW + 301 }))).toMatchObject({
      ok: false,
      code: "replay",
    });
    expect(await verify(await signed(post(), alice, { expires: NOW - 1 }))).toMatchObject({
      ok: false,
      code: "replay",
    });
    // A configurable skew.
    const r = await signed(post(), alice, { created: NOW - 100 });
    expect(await verify(r, { maxSkewSeconds: 60 })).toMatchObject({ ok: false, code: "replay" });
  });

  it("wrong alg → signature-invalid, even with a signature that is otherwise valid", async () => {
    const req = await signed(post()); // for the content-digest header
    const raw = await signRaw(
      {
        ...post(),
        headers: { ...post().headers, "content-digest": req.headers["content-digest"]! },
      },
      ["@method", "@authority", "@path", "content-digest"],
      stdParams({ alg: "rsa-pss-sha512" }),
    );
    expect(await verify(raw)).toMatchObject({ ok: false, code: "signature-invalid" });
    // Control: the same construction with alg="ed25519" verifies, so only alg made the difference.
    const ok = await signRaw(
      {
        ...post(),
        headers: { ...post().headers, "content-digest": req.headers["content-digest"]! },
      },
      ["@method", "@authority", "@path", "content-digest"],
      stdParams(),
    );
    expect(await verify(ok)).toMatchObject({ ok: true });
  });

  it("signature of the wrong length or garbage → signature-invalid", async () => {
    const r = await signed(post());
    for (const sig of ["sig1=:AAAA:", `sig1=:${Buffer.alloc(64).toString("base64")}:`]) {
      expect(await verify({ ...r, headers: { ...r.headers, signature: sig } })).toMatchObject({
        ok: false,
        code: "signature-invalid",
      });
    }
  });

  it("a forged request does not burn the nonce of a genuine one", async () => {
    const cache = new MemoryReplayCache();
    const genuine = await signed(post(), alice, { nonce: "victim-nonce" });
    const forged = await signed(post(), mallory, { keyid: "alice", nonce: "victim-nonce" });
    expect(await verify(forged, { replayCache: cache })).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
    expect(await verify(genuine, { replayCache: cache })).toMatchObject({ ok: true });
  });

  it("allowedAuthorities rejects requests signed for another service", async () => {
    const r = await signed(post());
    expect(await verify(r, { allowedAuthorities: ["api.sigil.test"] })).toMatchObject({
      ok: false,
      code: "signature-invalid",
    });
    expect(await verify(r, { allowedAuthorities: ["sigil.test"] })).toMatchObject({ ok: true });
  });

  it("stores nonces for the rest of the acceptance window", async () => {
    const calls: number[] = [];
    const cache: ReplayCache = {
      checkAndStore: async (_k, _n, ttl) => {
        calls.push(ttl);
        return true;
      },
    };
    await verify(await signed(post(), alice, { created: NOW }), { replayCache: cache });
    await verify(await signed(post(), alice, { created: NOW + 200 }), { replayCache: cache });
    await verify(await signed(post(), alice, { created: NOW - 300 }), { replayCache: cache });
    expect(calls).toEqual([301, 501, 1]);
  });

  it("store failures fail closed (the promise rejects)", async () => {
    const broken: ReplayCache = { checkAndStore: () => Promise.reject(new Error("redis down")) };
    await expect(verify(await signed(post()), { replayCache: broken })).rejects.toThrow(
      /redis down/,
    );
    await expect(
      verify(await signed(post()), {
        resolveKey: () => Promise.reject(new Error("registry down")),
      }),
    ).rejects.toThrow(/registry down/);
  });
});
