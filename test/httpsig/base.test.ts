import { describe, expect, it } from "vitest";
import {
  buildSignatureBase,
  componentValue,
  MemoryReplayCache,
  normalizeRequest,
  parseSignatureFields,
  verifyRequest,
} from "../../shared/httpsig";
import { readVectorJson } from "../support/vectors";
import { signerFromJwk, webcryptoVerify } from "./helpers";

interface Vector {
  key: { kid: string; x: string; d: string };
  request: { method: string; url: string; headers: Record<string, string>; body: string };
  signatureInput: string;
  signature: string;
}
const v = readVectorJson<Vector>("rfc9421", "b26-ed25519.json");

// RFC 9421 Appendix B.2.6, the signature base as printed in the RFC.
const RFC_BASE = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@method": POST',
  '"@path": /foo',
  '"@authority": example.com',
  '"content-type": application/json',
  '"content-length": 18',
  '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
].join("\n");

const CREATED_MS = 1618884473 * 1000;

function vectorVerify(req: Vector["request"], signatureInput = v.signatureInput) {
  return verifyRequest(
    {
      ...req,
      headers: { ...req.headers, "Signature-Input": signatureInput, Signature: v.signature },
    },
    {
      resolveKey: async (kid) =>
        kid === v.key.kid
          ? { status: "active", publicKey: (await signerFromJwk(kid, v.key.x, v.key.d)).publicKey }
          : { status: "unknown" },
      verify: webcryptoVerify,
      replayCache: new MemoryReplayCache(),
      now: () => CREATED_MS,
      // The vector has no nonce and does not cover @query / content-digest.
      relaxPolicy: { requireNonce: false, requireComponents: false },
    },
  );
}

describe("RFC 9421 B.2.6 (ed25519)", () => {
  it("reproduces the signature base", () => {
    const parsed = parseSignatureFields(v.signatureInput, v.signature);
    if (!parsed.ok) throw new Error(parsed.detail);
    expect(parsed.entry.label).toBe("sig-b26");
    expect(
      buildSignatureBase(parsed.entry.components, parsed.entry.params, normalizeRequest(v.request)),
    ).toBe(RFC_BASE);
  });

  it("verifies the RFC's signature", async () => {
    const r = await vectorVerify(v.request);
    expect(r).toMatchObject({
      ok: true,
      keyid: "test-key-ed25519",
      label: "sig-b26",
      created: 1618884473,
    });
  });

  it("our signer produces the RFC's (deterministic Ed25519) signature for the same base", async () => {
    const signer = await signerFromJwk(v.key.kid, v.key.x, v.key.d);
    const sig = await signer.sign(new TextEncoder().encode(RFC_BASE));
    expect(`sig-b26=:${Buffer.from(sig).toString("base64")}:`).toBe(v.signature);
  });

  it("rejects the vector when a covered header changes", async () => {
    const r = await vectorVerify({
      ...v.request,
      headers: { ...v.request.headers, Date: "Wed, 21 Apr 2021 02:07:55 GMT" },
    });
    expect(r).toMatchObject({ ok: false, code: "signature-invalid" });
  });

  it("still enforces the default policy on the vector", async () => {
    const r = await verifyRequest(
      {
        ...v.request,
        headers: {
          ...v.request.headers,
          "Signature-Input": v.signatureInput,
          Signature: v.signature,
        },
      },
      {
        resolveKey: async () => ({ status: "unknown" }),
        verify: webcryptoVerify,
        replayCache: new MemoryReplayCache(),
        now: () => CREATED_MS,
      },
    );
    expect(r).toMatchObject({ ok: false, code: "auth-required" });
  });
});

describe("derived components (RFC 9421 §2.2)", () => {
  const req = normalizeRequest({
    method: "POST",
    url: "https://WWW.Example.com:443/path/to?param=value&foo=bar&baz=bat%2Dman#frag",
    headers: { "X-Multi": "a,  b", "x-empty": "" },
  });
  it.each([
    ["@method", "POST"],
    ["@authority", "www.example.com"],
    ["@scheme", "https"],
    ["@path", "/path/to"],
    ["@query", "?param=value&foo=bar&baz=bat%2Dman"],
    ["@request-target", "/path/to?param=value&foo=bar&baz=bat%2Dman"],
    ["@target-uri", "https://www.example.com/path/to?param=value&foo=bar&baz=bat%2Dman"],
    ["x-multi", "a,  b"],
    ["x-empty", ""],
  ])("%s", (name, value) => {
    expect(componentValue(name, req)).toBe(value);
  });

  it("an absent query is '?' and a non-default port is kept", () => {
    const r = normalizeRequest({ method: "GET", url: "http://localhost:8787" });
    expect(componentValue("@query", r)).toBe("?");
    expect(componentValue("@path", r)).toBe("/");
    expect(componentValue("@authority", r)).toBe("localhost:8787");
  });

  it("repeated header fields are combined with ', '", () => {
    const h = new Headers();
    h.append("x-a", " one ");
    h.append("x-a", "two");
    expect(componentValue("x-a", { ...req, headers: h })).toBe("one, two");
  });

  it("rejects unknown derived components, missing headers and duplicates", () => {
    expect(() => componentValue("@status", req)).toThrow(/unsupported/);
    expect(() => componentValue("x-missing", req)).toThrow(/missing/);
    expect(() => buildSignatureBase(["@method", "@method"], new Map(), req)).toThrow(/twice/);
    expect(() => buildSignatureBase(["@signature-params"], new Map(), req)).toThrow();
  });
});
