// Reference-SDK fixtures: Python and JavaScript signatures verify (double hash), the Go one is
// reported as the single-hash variant, the cross-language trust bundle verifies under the
// authority key, and a one-byte change anywhere breaks each of them.
import { describe, expect, it } from "vitest";
import { canonicalJson, fromBase64, toBase64 } from "../../shared/encoding";
import {
  checkSchemaSignature,
  parsePublicKeyPem,
  SchemaPinError,
  verifyTrustBundle,
} from "../../shared/schemapin";
import { fixtureJson, fixtureText, signedFixture, wellKnownFixture } from "./helpers";

const NOW = Date.parse("2026-06-01T00:00:00Z");

/** Every one-byte variation (each position, one bit flipped) of a string. */
function* oneByteChanges(s: string): Generator<string> {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    yield s.slice(0, i) + String.fromCharCode(c ^ 0x01) + s.slice(i + 1);
  }
}

const tryParse = (s: string): unknown => {
  try {
    return JSON.parse(s);
  } catch {
    return undefined; // a change that breaks JSON is rejected before any verification
  }
};

describe.each(["python", "javascript"])("%s SDK fixture", (lang) => {
  const { schema, signature } = signedFixture(lang);
  const key = parsePublicKeyPem(wellKnownFixture(lang).public_key_pem);

  it("verifies under schemapin-v1 (double hash)", async () => {
    expect(await checkSchemaSignature(schema, signature, key)).toEqual({
      valid: true,
      variant: "schemapin-v1",
    });
  });

  it("fails after any one-byte change of the schema", async () => {
    let tried = 0;
    for (const text of oneByteChanges(canonicalJson(schema))) {
      const changed = tryParse(text);
      if (changed === undefined) continue;
      tried++;
      const r = await checkSchemaSignature(changed, signature, key).catch((e: SchemaPinError) => e);
      expect(r instanceof SchemaPinError || r.valid === false).toBe(true);
    }
    expect(tried).toBeGreaterThan(100);
  });

  it("fails after any one-byte change of the signature", async () => {
    const der = fromBase64(signature);
    for (let i = 0; i < der.length; i++) {
      const bad = der.slice();
      bad[i]! ^= 0x01;
      const r = await checkSchemaSignature(schema, toBase64(bad), key);
      expect(r.valid).toBe(false);
    }
  });

  it("fails under any one-byte change of the public key", async () => {
    const spki = key.spki;
    // Bytes after the fixed SPKI header are the point; changing the header breaks parsing.
    for (let i = 0; i < spki.length; i++) {
      const bad = spki.slice();
      bad[i]! ^= 0x01;
      let ok = false;
      try {
        const k = parsePublicKeyPem(
          `-----BEGIN PUBLIC KEY-----\n${toBase64(bad)}\n-----END PUBLIC KEY-----\n`,
        );
        ok = (await checkSchemaSignature(schema, signature, k)).valid;
      } catch (e) {
        expect(e).toBeInstanceOf(SchemaPinError);
      }
      expect(ok).toBe(false);
    }
  });
});

describe("Go SDK fixture (single hash)", () => {
  const { schema, signature } = signedFixture("go-client");
  const key = parsePublicKeyPem(wellKnownFixture("go-client").public_key_pem);

  it("is reported as the single-hash Go variant, never as valid", async () => {
    const r = await checkSchemaSignature(schema, signature, key);
    expect(r.valid).toBe(false);
    expect(r.valid === false && r.variant).toBe("single-hash-go");
  });

  it("is neither valid nor Go-variant after any one-byte change of the schema", async () => {
    for (const text of oneByteChanges(canonicalJson(schema))) {
      const changed = tryParse(text);
      if (changed === undefined) continue;
      const r = await checkSchemaSignature(changed, signature, key).catch(() => null);
      if (r) expect(r).toMatchObject({ valid: false, variant: null });
    }
  });

  it("is neither valid nor Go-variant after any one-byte change of the signature", async () => {
    const der = fromBase64(signature);
    for (let i = 0; i < der.length; i++) {
      const bad = der.slice();
      bad[i]! ^= 0x01;
      expect(await checkSchemaSignature(schema, toBase64(bad), key)).toMatchObject({
        valid: false,
        variant: null,
      });
    }
  });
});

describe("cross-language trust bundle", () => {
  const bundle = fixtureJson<Record<string, unknown>>("cross-language", "signed_bundle.json");
  const authority = parsePublicKeyPem(fixtureText("cross-language", "authority_public.pem"));
  const opts = { trustedAuthorities: [authority.fingerprint], now: NOW };

  it("verifies with the authority key", async () => {
    const b = await verifyTrustBundle(bundle, opts);
    expect(b.documents[0]?.domain).toBe("example.com");
  });

  it("is refused when the authority is not trusted", async () => {
    await expect(
      verifyTrustBundle(bundle, { ...opts, trustedAuthorities: [] }),
    ).rejects.toMatchObject({ code: "key_not_found" });
  });

  it("is refused once expired", async () => {
    await expect(
      verifyTrustBundle(bundle, { ...opts, now: Date.parse("2099-01-02T00:00:00Z") }),
    ).rejects.toMatchObject({ code: "bundle_expired" });
  });

  it("fails after any one-byte change of the bundle", async () => {
    let tried = 0;
    for (const text of oneByteChanges(canonicalJson(bundle))) {
      const changed = tryParse(text);
      if (changed === undefined) continue;
      tried++;
      await expect(verifyTrustBundle(changed, opts)).rejects.toBeInstanceOf(SchemaPinError);
    }
    expect(tried).toBeGreaterThan(500);
  });

  it("fails when a field is added", async () => {
    await expect(verifyTrustBundle({ ...bundle, extra: 1 }, opts)).rejects.toMatchObject({
      code: "signature_invalid",
    });
  });
});
