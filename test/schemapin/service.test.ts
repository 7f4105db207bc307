// Tool verification service: SchemaPin + strict TOFU, against a real local HTTP server.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RedisPinStore } from "../../functions/node/stores/pins-redis";
import {
  HttpDiscoveryResolver,
  MemoryPinStore,
  parsePublicKeyPem,
  type TofuOptions,
  ToolVerificationService,
  TrustBundleResolver,
  type VerifyToolOutcome,
  verifyTrustBundle,
  WELL_KNOWN_PATH,
} from "../../shared/schemapin";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import {
  ed25519Signer,
  fixtureJson,
  fixtureText,
  p256Signer,
  signedFixture,
  TestServer,
  type WellKnown,
  wellKnownFixture,
} from "./helpers";

const server = new TestServer();
beforeAll(() => server.start());
afterAll(() => server.stop());

const DOMAINS = ["py.example", "js.example", "go.example", "ed.example", "p2.example"];
let pins: MemoryPinStore;
let clock: number;
beforeEach(() => {
  pins = new MemoryPinStore();
  clock = Date.parse("2026-06-01T00:00:00Z");
  server.json(`/py${WELL_KNOWN_PATH}`, wellKnownFixture("python"));
  server.json(`/js${WELL_KNOWN_PATH}`, wellKnownFixture("javascript"));
  server.json(`/go${WELL_KNOWN_PATH}`, wellKnownFixture("go-client"));
});

function service(tofu: TofuOptions = {}): ToolVerificationService {
  const baseUrls = Object.fromEntries(DOMAINS.map((d) => [d, server.base(d.split(".")[0]!)]));
  return new ToolVerificationService({
    pins,
    resolver: new HttpDiscoveryResolver({ baseUrls, timeoutMs: 2000 }),
    tofu,
    now: () => clock,
  });
}

const py = signedFixture("python");
const pyReq = { toolId: "calculate_sum", domain: "py.example", ...py };

function expectAudited(o: VerifyToolOutcome): void {
  expect(o.auditEvent.type).toBe("tool.verify");
  expect(o.auditEvent.outcome).toBe(o.response.result);
  expect(o.auditEvent.toolId).toBe(o.response.toolId);
}

describe("strict TOFU (default: automatic_key_pinning = false)", () => {
  it("first use is reported, not trusted, until an admin pins the key", async () => {
    const svc = service();
    const first = await svc.verify(pyReq);
    expectAudited(first);
    expect(first.response).toMatchObject({
      result: "first_use",
      trusted: false,
      signatureVerified: true,
      variant: "schemapin-v1",
      fingerprint: parsePublicKeyPem(wellKnownFixture("python").public_key_pem).fingerprint,
      pin: { status: "first_use", scope: "tool", key: "calculate_sum@py.example" },
    });
    expect((await svc.verify(pyReq)).response.result).toBe("first_use");

    const put = await svc.putPin("py.example", {
      publicKeyPem: wellKnownFixture("python").public_key_pem,
      toolId: "calculate_sum",
    });
    expect(put).toMatchObject({
      ok: true,
      created: true,
      pin: { status: "pinned", source: "admin" },
    });
    const after = await svc.verify(pyReq);
    expect(after.response).toMatchObject({ result: "trusted", trusted: true });
    expect(after.securityEvents).toEqual([]);
  });

  it("an admin can confirm an unexpired first use", async () => {
    const svc = service();
    await svc.verify(pyReq);
    const c = await svc.confirmFirstUse("py.example", "calculate_sum");
    expect(c).toMatchObject({ ok: true, created: true, pin: { source: "confirmed" } });
    expect((await svc.verify(pyReq)).response.result).toBe("trusted");
  });

  it("an unconfirmed first use expires after trust_on_first_use_timeout_hours", async () => {
    const svc = service({ trust_on_first_use_timeout_hours: 2 });
    const first = await svc.verify(pyReq);
    expect(first.response.pin?.expiresAt).toBe("2026-06-01T02:00:00.000Z");
    clock += 2 * 3_600_000 + 1;
    expect(await svc.confirmFirstUse("py.example", "calculate_sum")).toMatchObject({
      ok: false,
      error: "not_found",
    });
    expect(
      (await svc.listPins("py.example")).ok && (await svc.listPins("py.example")),
    ).toMatchObject({ pins: [] });
    const again = await svc.verify(pyReq);
    expect(again.response).toMatchObject({ result: "first_use" });
    expect(again.response.pin?.firstSeenAt).toBe(new Date(clock).toISOString());
  });

  it("a domain-wide pin trusts every tool of the domain", async () => {
    const svc = service();
    await svc.putPin("py.example", { publicKeyPem: wellKnownFixture("python").public_key_pem });
    const r = await svc.verify(pyReq);
    expect(r.response).toMatchObject({
      result: "trusted",
      pin: { scope: "domain", key: "*@py.example" },
    });
  });

  it("a different key than the pinned one is key_pin_mismatch with a security event", async () => {
    const svc = service();
    await svc.putPin("py.example", {
      publicKeyPem: wellKnownFixture("javascript").public_key_pem,
      toolId: "calculate_sum",
    });
    const r = await svc.verify(pyReq);
    expectAudited(r);
    expect(r.response).toMatchObject({
      result: "key_pin_mismatch",
      trusted: false,
      errorCode: "key_pin_mismatch",
      pinnedFingerprint: parsePublicKeyPem(wellKnownFixture("javascript").public_key_pem)
        .fingerprint,
    });
    expect(r.securityEvents).toHaveLength(1);
    expect(r.securityEvents[0]).toMatchObject({
      type: "tool.key_pin_mismatch",
      severity: "high",
      domain: "py.example",
      toolId: "calculate_sum",
    });
    // The pin did not move.
    expect((await svc.verify(pyReq)).response.result).toBe("key_pin_mismatch");
  });

  it("a changed key during an unconfirmed first use is also a mismatch", async () => {
    const svc = service();
    await svc.verify(pyReq);
    server.json(`/py${WELL_KNOWN_PATH}`, wellKnownFixture("javascript"));
    const js = signedFixture("javascript");
    const r = await svc.verify({ ...pyReq, ...js });
    expect(r.response.result).toBe("key_pin_mismatch");
    expect(r.securityEvents).toHaveLength(1);
  });

  it("PUT with a different key already pinned is a conflict; DELETE then PUT re-pins", async () => {
    const svc = service();
    const pyPem = wellKnownFixture("python").public_key_pem;
    const jsPem = wellKnownFixture("javascript").public_key_pem;
    await svc.putPin("py.example", { publicKeyPem: pyPem, toolId: "t" });
    expect(await svc.putPin("py.example", { publicKeyPem: pyPem, toolId: "t" })).toMatchObject({
      ok: true,
      created: false,
    });
    expect(await svc.putPin("py.example", { publicKeyPem: jsPem, toolId: "t" })).toMatchObject({
      ok: false,
      error: "conflict",
    });
    expect(await svc.deletePin("py.example", "t")).toMatchObject({ ok: true, deleted: true });
    expect(await svc.putPin("py.example", { publicKeyPem: jsPem, toolId: "t" })).toMatchObject({
      ok: true,
      created: true,
    });
    expect(await svc.putPin("py.example", { publicKeyPem: "nope" })).toMatchObject({
      ok: false,
      error: "invalid_key",
    });
    expect(await svc.putPin("127.0.0.1", { publicKeyPem: pyPem })).toMatchObject({
      ok: false,
      error: "invalid_domain",
    });
  });
});

describe("automatic_key_pinning = true", () => {
  it("pins the first key, but only after its signature verified", async () => {
    const svc = service({ automatic_key_pinning: true });
    const bad = await svc.verify({ ...pyReq, signature: signedFixture("javascript").signature });
    expect(bad.response.result).toBe("signature_invalid");
    expect(await pins.get("py.example", "calculate_sum")).toBeNull();

    const good = await svc.verify(pyReq);
    expect(good.response).toMatchObject({ result: "trusted", pin: { source: "automatic" } });
    expect((await svc.verify(pyReq)).response.result).toBe("trusted");
  });
});

describe("revocation", () => {
  it("a key in the discovery revoked_keys list is key_revoked", async () => {
    const wk = wellKnownFixture("python");
    const fp = parsePublicKeyPem(wk.public_key_pem).fingerprint;
    server.json(`/py${WELL_KNOWN_PATH}`, {
      ...wk,
      revoked_keys: [...(wk.revoked_keys ?? []), fp.toUpperCase().replace("SHA256", "sha256")],
    });
    const r = await service().verify(pyReq);
    expectAudited(r);
    expect(r.response).toMatchObject({
      result: "key_revoked",
      errorCode: "key_revoked",
      fingerprint: fp,
    });
    expect(r.securityEvents[0]).toMatchObject({ type: "tool.key_revoked" });
    expect(await pins.get("py.example", "calculate_sum")).toBeNull();
  });

  it("a key in the standalone revocation document is key_revoked, even when pinned", async () => {
    const wk = wellKnownFixture("python");
    const fp = parsePublicKeyPem(wk.public_key_pem).fingerprint;
    server.json(`/py${WELL_KNOWN_PATH}`, {
      ...wk,
      revocation_endpoint: "https://py.example/.well-known/schemapin-revocations.json",
    });
    server.json("/py/.well-known/schemapin-revocations.json", {
      schemapin_version: "1.2",
      domain: "py.example",
      updated_at: "2026-05-01T00:00:00Z",
      revoked_keys: [
        { fingerprint: fp, revoked_at: "2026-05-01T00:00:00Z", reason: "key_compromise" },
      ],
    });
    const svc = service();
    await svc.putPin("py.example", { publicKeyPem: wk.public_key_pem });
    const r = await svc.verify(pyReq);
    expect(r.response).toMatchObject({ result: "key_revoked" });
    expect(r.response.detail).toContain("key_compromise");
  });
});

describe("signatures", () => {
  it("JavaScript SDK schemas verify like Python ones", async () => {
    const r = await service().verify({
      toolId: "calculate_sum",
      domain: "js.example",
      ...signedFixture("javascript"),
    });
    expect(r.response).toMatchObject({ result: "first_use", variant: "schemapin-v1" });
  });

  it("Go single-hash signatures are reported as such and never pinned", async () => {
    const svc = service({ automatic_key_pinning: true });
    const r = await svc.verify({
      toolId: "calculate_sum",
      domain: "go.example",
      ...signedFixture("go-client"),
    });
    expect(r.response).toMatchObject({
      result: "signature_invalid",
      trusted: false,
      variant: "single-hash-go",
      errorCode: "signature_invalid",
      signatureVerified: false,
    });
    expect(await pins.get("go.example", "calculate_sum")).toBeNull();
  });

  it("a tampered schema is signature_invalid", async () => {
    const schema = structuredClone(py.schema) as { description: string };
    schema.description += "!";
    const r = await service().verify({ ...pyReq, schema });
    expect(r.response).toMatchObject({ result: "signature_invalid", variant: null });
  });

  it("unsupported canonicalization and unrepresentable numbers are refused with their code", async () => {
    const svc = service();
    expect((await svc.verify({ ...pyReq, canonicalization: "jcs" })).response).toMatchObject({
      result: "signature_invalid",
      errorCode: "canonicalization_unsupported",
    });
    expect((await svc.verify({ ...pyReq, schema: { x: 1e-9 } })).response).toMatchObject({
      errorCode: "canonicalization_unsupported",
    });
  });

  it("Ed25519 variant: the pinned Ed25519 key verifies a signature over the schema hash", async () => {
    const signer = await ed25519Signer();
    const wk: WellKnown = {
      schema_version: "1.2",
      developer_name: "Ed",
      public_key_pem: signer.pem,
    };
    server.json(`/ed${WELL_KNOWN_PATH}`, wk);
    const schema = { name: "echo", description: "Echoes text", parameters: { type: "object" } };
    const req = {
      toolId: "echo",
      domain: "ed.example",
      schema,
      signature: await signer.signSchema(schema),
    };
    const svc = service();
    expect((await svc.verify(req)).response).toMatchObject({
      result: "first_use",
      algorithm: "Ed25519",
      variant: "ed25519-schema-hash",
    });
    await svc.putPin("ed.example", { publicKeyPem: signer.pem, toolId: "echo" });
    expect((await svc.verify({ ...req, algorithm: "Ed25519" })).response.result).toBe("trusted");
    expect((await svc.verify({ ...req, algorithm: "ES256" })).response.result).toBe(
      "signature_invalid",
    );
    expect(
      (await svc.verify({ ...req, schema: { ...schema, name: "echo2" } })).response.result,
    ).toBe("signature_invalid");
  });

  it("freshly generated P-256 keys: double hash verifies, single hash is the Go variant", async () => {
    const signer = await p256Signer();
    server.json(`/p2${WELL_KNOWN_PATH}`, {
      schema_version: "1.2",
      developer_name: "P",
      public_key_pem: signer.pem,
    });
    const schema = {
      name: "t",
      description: "Ünïcode ✓",
      parameters: { type: "object", properties: { n: { type: "integer", maximum: 10 } } },
    };
    const svc = service();
    const ok = await svc.verify({
      toolId: "t",
      domain: "p2.example",
      schema,
      signature: await signer.signSchema(schema),
    });
    expect(ok.response.variant).toBe("schemapin-v1");
    const go = await svc.verify({
      toolId: "t",
      domain: "p2.example",
      schema,
      signature: await signer.signSchemaSingleHash(schema),
    });
    expect(go.response).toMatchObject({ result: "signature_invalid", variant: "single-hash-go" });
  });
});

describe("unknown providers", () => {
  it("no discovery document is unknown_provider", async () => {
    const r = await service().verify({ ...pyReq, domain: "nobody.example" });
    expectAudited(r);
    expect(r.response).toMatchObject({
      result: "unknown_provider",
      errorCode: "discovery_fetch_failed",
      fingerprint: null,
    });
  });

  it("a refused domain is unknown_provider", async () => {
    const r = await service().verify({ ...pyReq, domain: "localhost" });
    expect(r.response.result).toBe("unknown_provider");
  });

  it("an unusable provider key is unknown_provider (key_not_found)", async () => {
    server.json(`/py${WELL_KNOWN_PATH}`, {
      ...wellKnownFixture("python"),
      public_key_pem: "-----BEGIN PUBLIC KEY-----\nMOCK\n-----END PUBLIC KEY-----",
    });
    const r = await service().verify(pyReq);
    expect(r.response).toMatchObject({ result: "unknown_provider", errorCode: "key_not_found" });
  });
});

describe("offline: trust bundle resolver", () => {
  it("serves verified bundle documents to the service", async () => {
    const bundle = fixtureJson<Record<string, unknown>>("cross-language", "signed_bundle.json");
    const authority = parsePublicKeyPem(fixtureText("cross-language", "authority_public.pem"));
    const verified = await verifyTrustBundle(bundle, {
      trustedAuthorities: [authority.fingerprint],
      now: clock,
    });
    const svc = new ToolVerificationService({
      pins,
      resolver: new TrustBundleResolver([verified]),
      now: () => clock,
    });
    // The fixture bundle carries a placeholder key ("MOCK"): found, but unusable.
    const r = await svc.verify({ ...pyReq, domain: "example.com" });
    expect(r.response).toMatchObject({
      result: "unknown_provider",
      errorCode: "key_not_found",
      discoverySource: "trust-bundle",
    });
    expect((await svc.verify({ ...pyReq, domain: "other.example" })).response.errorCode).toBe(
      "discovery_fetch_failed",
    );
  });
});

describe("TOFU over the Redis pin store", () => {
  it("first use → admin pin → trusted → other key is a mismatch", async () => {
    const redis = connectRedis();
    const prefix = testPrefix("schemapin-service");
    try {
      const baseUrls = { "py.example": server.base("py") };
      const svc = new ToolVerificationService({
        pins: new RedisPinStore(redis, prefix),
        resolver: new HttpDiscoveryResolver({ baseUrls }),
        now: () => clock,
      });
      expect((await svc.verify(pyReq)).response.result).toBe("first_use");
      await svc.putPin("py.example", {
        publicKeyPem: wellKnownFixture("python").public_key_pem,
        toolId: "calculate_sum",
      });
      expect((await svc.verify(pyReq)).response.result).toBe("trusted");
      server.json(`/py${WELL_KNOWN_PATH}`, wellKnownFixture("javascript"));
      const r = await svc.verify({ ...pyReq, ...signedFixture("javascript") });
      expect(r.response.result).toBe("key_pin_mismatch");
      expect(r.securityEvents).toHaveLength(1);
    } finally {
      await dropPrefix(redis, prefix);
      redis.disconnect();
    }
  });
});
