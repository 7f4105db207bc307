// Offline verification from trust bundles (docs/schemapin.md, "Offline use"): bundles configured by
// the operator ([tofu] trust_bundles, signed by a [tofu] bundle_authorities key) supply provider
// keys and revocations, and a domain they vouch for needs no fetch. With discovery = "bundles-only"
// nothing is ever fetched. Node reads the bundle from a file, the edge takes it inline.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import {
  configuredResolver,
  HttpDiscoveryResolver,
  loadTrustBundles,
  MemoryPinStore,
  parsePublicKeyPem,
  ToolVerificationService,
  TrustBundleResolver,
  verifyTrustBundle,
} from "../../shared/schemapin";
import { registeredKey, startTarget, type Target, targetNames } from "../support/targets";
import { staticZone, TestDnsServer } from "./dns-server";
import { fixtureJson, fixtureText, p256Signer, signedFixture, wellKnownFixture } from "./helpers";

const NOW = Date.parse("2026-06-01T00:00:00Z");
const py = signedFixture("python");
const js = signedFixture("javascript");
const pyReq = { toolId: "calculate_sum", domain: "py.example", ...py };

/** A bundle signed the way the reference SDKs sign them: ECDSA-SHA256 over the canonical form. */
async function signedBundle(extra: { expires_at?: string } = {}) {
  const authority = await p256Signer();
  const jsKey = parsePublicKeyPem(wellKnownFixture("javascript").public_key_pem);
  const unsigned = {
    schemapin_bundle_version: "1.4",
    created_at: "2026-05-01T00:00:00Z",
    documents: [
      { domain: "py.example", ...wellKnownFixture("python") },
      { domain: "revoked.example", ...wellKnownFixture("javascript") },
    ],
    revocations: [
      {
        schemapin_version: "1.4",
        domain: "revoked.example",
        updated_at: "2026-05-01T00:00:00Z",
        revoked_keys: [
          {
            fingerprint: jsKey.fingerprint,
            revoked_at: "2026-05-01T00:00:00Z",
            reason: "key_compromise",
          },
        ],
      },
    ],
    bundle_authority: { kid: "test-authority", public_key_pem: authority.pem },
    signed_at: "2026-05-01T00:00:00Z",
    expires_at: extra.expires_at ?? "2099-01-01T00:00:00Z",
    signature: "",
  };
  const signature = await authority.signSchemaSingleHash(unsigned);
  return {
    bundle: { ...unsigned, signature },
    fingerprint: parsePublicKeyPem(authority.pem).fingerprint,
    pem: authority.pem,
  };
}

describe("trust bundles in the service (no network resolver at all)", () => {
  it("the cross-language vector bundle serves its domain offline; other domains are not fetched", async () => {
    const bundles = await loadTrustBundles(
      [
        {
          source: "signed_bundle.json",
          raw: fixtureJson("cross-language", "signed_bundle.json"),
        },
      ],
      [fixtureText("cross-language", "authority_public.pem")], // a PEM entry works too
      NOW,
    );
    const svc = new ToolVerificationService({
      pins: new MemoryPinStore(),
      resolver: configuredResolver({
        mode: "bundles-only",
        bundles,
        // Never used with "bundles-only"; a fetch here would fail the test.
        network: new HttpDiscoveryResolver({
          fetch: () => Promise.reject(new Error("network used")),
        }),
      }),
      now: () => NOW,
    });
    // The vector's provider key is a placeholder ("MOCK"): found offline, unusable.
    const r = await svc.verify({ ...pyReq, domain: "example.com" });
    expect(r.response).toMatchObject({
      result: "unknown_provider",
      errorCode: "key_not_found",
      discoverySource: "trust-bundle",
    });
    const other = await svc.verify({ ...pyReq, domain: "other.example" });
    expect(other.response.errorCode).toBe("discovery_fetch_failed");
    expect(other.response.detail).toMatch(/bundles-only/);
  });

  it("bundles come before the network: a bundled domain is never fetched", async () => {
    const { bundle, fingerprint } = await signedBundle();
    const bundles = await loadTrustBundles([{ source: "b", raw: bundle }], [fingerprint], NOW);
    const fetched: string[] = [];
    const svc = new ToolVerificationService({
      pins: new MemoryPinStore(),
      resolver: configuredResolver({
        mode: "network",
        bundles,
        network: new HttpDiscoveryResolver({
          fetch: (url) => {
            fetched.push(url);
            return Promise.reject(new Error("offline"));
          },
        }),
      }),
      now: () => NOW,
    });
    const r = await svc.verify(pyReq);
    expect(r.response).toMatchObject({
      result: "first_use",
      signatureVerified: true,
      discoverySource: "trust-bundle",
    });
    const rev = await svc.verify({ ...pyReq, domain: "revoked.example", ...js });
    expect(rev.response).toMatchObject({ result: "key_revoked", discoverySource: "trust-bundle" });
    expect(fetched).toEqual([]);
    await svc.verify({ ...pyReq, domain: "elsewhere.example" });
    expect(fetched).toEqual(["https://elsewhere.example/.well-known/schemapin.json"]);
  });

  it("a bundle that expires while running stops vouching for its domains", async () => {
    const { bundle, fingerprint } = await signedBundle({ expires_at: "2026-07-01T00:00:00Z" });
    const verified = await verifyTrustBundle(bundle, {
      trustedAuthorities: [fingerprint],
      now: NOW,
    });
    let clock = NOW;
    const resolver = new TrustBundleResolver([verified], () => clock);
    expect((await resolver.resolve("py.example")).source).toBe("trust-bundle");
    clock = Date.parse("2026-07-02T00:00:00Z");
    await expect(resolver.resolve("py.example")).rejects.toMatchObject({
      code: "discovery_fetch_failed",
      message: expect.stringMatching(/expired/),
    });
  });

  it("a configured bundle that does not verify stops start-up, naming the bundle and why", async () => {
    const { bundle, fingerprint } = await signedBundle();
    const load = (raw: unknown, authorities = [fingerprint], now = NOW) =>
      loadTrustBundles([{ source: "/etc/sigil/b.json", raw }], authorities, now);
    await expect(load(bundle, [`sha256:${"0".repeat(64)}`])).rejects.toThrow(
      /\/etc\/sigil\/b.json.*key_not_found/,
    );
    await expect(
      load({ ...bundle, documents: [{ ...bundle.documents[0]!, domain: "evil.example" }] }),
    ).rejects.toThrow(/signature_invalid/);
    await expect(load(bundle, [fingerprint], Date.parse("2099-02-01T00:00:00Z"))).rejects.toThrow(
      /bundle_expired/,
    );
    await expect(
      load(bundle, ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"]),
    ).rejects.toThrow(/bundle_authorities\[0\]/);
  });
});

for (const name of targetNames) {
  describe(`trust bundles over HTTP (${name}, discovery = "bundles-only")`, () => {
    let t: Target;
    let admin: Sigil;
    let agent: Sigil;
    let dir: string;

    beforeAll(async () => {
      const { bundle, fingerprint } = await signedBundle();
      dir = mkdtempSync(join(tmpdir(), "sigil-bundles-"));
      const path = join(dir, "bundle.json");
      writeFileSync(path, JSON.stringify(bundle));
      t = await startTarget(name, {
        SIGIL_TOFU_DISCOVERY: "bundles-only",
        // Node reads the file; the edge has no files, so the bundle goes in inline.
        SIGIL_TOFU_TRUST_BUNDLES: JSON.stringify(name === "node" ? [path] : [bundle]),
        SIGIL_TOFU_BUNDLE_AUTHORITIES: JSON.stringify([fingerprint]),
      });
      admin = t.client(t.admin);
      agent = t.client(await registeredKey(admin, "agent", "bundle-user"));
    }, 90_000);
    afterAll(async () => {
      await t?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("verifies from the bundle with no network: first use, then trusted once pinned", async () => {
      const first = await agent.tools.verify(pyReq);
      expect(first).toMatchObject({
        result: "first_use",
        signatureVerified: true,
        discoverySource: "trust-bundle",
      });
      await admin.tools.putPin("py.example", {
        publicKeyPem: wellKnownFixture("python").public_key_pem,
        toolId: "calculate_sum",
      });
      expect(await agent.tools.verify(pyReq)).toMatchObject({
        result: "trusted",
        discoverySource: "trust-bundle",
      });
    });

    it("applies the bundle's revocations", async () => {
      expect(
        await agent.tools.verify({ ...pyReq, domain: "revoked.example", ...js }),
      ).toMatchObject({ result: "key_revoked", errorCode: "key_revoked" });
    });

    it("does not fetch a domain the bundles do not vouch for", async () => {
      const r = await agent.tools.verify({ ...pyReq, domain: "unbundled.example" });
      expect(r).toMatchObject({ result: "unknown_provider", errorCode: "discovery_fetch_failed" });
      expect(r.detail).toMatch(/bundles-only/);
    });
  });
}

describe.skipIf(!targetNames.includes("node"))(
  "trust bundles over HTTP (node, network discovery through the test DNS)",
  () => {
    const dns = new TestDnsServer(staticZone({}));
    let t: Target;
    let agent: Sigil;
    let dir: string;

    beforeAll(async () => {
      await dns.start();
      const { bundle, pem } = await signedBundle();
      dir = mkdtempSync(join(tmpdir(), "sigil-bundles-"));
      writeFileSync(join(dir, "bundle.json"), JSON.stringify(bundle));
      t = await startTarget("node", {
        SIGIL_TOFU_DISCOVERY_RESOLVERS: JSON.stringify([dns.address]),
        SIGIL_TOFU_TRUST_BUNDLES: JSON.stringify([join(dir, "bundle.json")]),
        SIGIL_TOFU_BUNDLE_AUTHORITIES: JSON.stringify([pem]),
      });
      agent = t.client(await registeredKey(t.client(t.admin), "agent", "bundle-user"));
    }, 90_000);
    afterAll(async () => {
      await t?.stop();
      await dns.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it("a bundled domain is answered without a single DNS query; others go to the network", async () => {
      expect(await agent.tools.verify(pyReq)).toMatchObject({
        result: "first_use",
        discoverySource: "trust-bundle",
      });
      expect(dns.queries).toEqual([]);
      const r = await agent.tools.verify({ ...pyReq, domain: "unbundled.example" });
      expect(r).toMatchObject({ result: "unknown_provider", errorCode: "discovery_fetch_failed" });
      expect(dns.asked("unbundled.example")).toBeGreaterThan(0); // NXDOMAIN from the test server
    });
  },
);
