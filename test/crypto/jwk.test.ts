import { describe, expect, it } from "vitest";
import {
  CryptoError,
  createSigner,
  ed25519Kid,
  exportOkpJwk,
  generateEd25519KeyPair,
  generateX25519KeyPair,
  importOkpJwk,
  publicJwk,
  publicKeyFromJwk,
  x25519Kid,
  x25519SharedSecret,
} from "../../shared/crypto";
import { fromBase64Url, toBase64Url, toHex, utf8 } from "../../shared/encoding";

// RFC 8037 Appendix A.
const A1 = {
  kty: "OKP",
  crv: "Ed25519",
  d: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
};

describe("RFC 8037 / RFC 7638", () => {
  it("A.3: the JWK thumbprint of the A.2 public key is the kid", () => {
    expect(ed25519Kid(fromBase64Url(A1.x))).toBe("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  });

  it("A.4: the imported private key signs the JWS example to the published signature", async () => {
    const key = await importOkpJwk(A1);
    expect(key.crv).toBe("Ed25519");
    const signer = await createSigner(key.secretKey!);
    const input = utf8("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc");
    expect(toBase64Url(await signer.sign(input))).toBe(
      "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
    );
  });

  it("A.6: X25519 keys round-trip as JWK and agree on the RFC 7748 shared secret", async () => {
    const bobPub = "3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08";
    const alice = await importOkpJwk({
      kty: "OKP",
      crv: "X25519",
      d: toBase64Url(
        Uint8Array.from(
          Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex"),
        ),
      ),
      x: "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo",
    });
    const bob = await importOkpJwk({ kty: "OKP", crv: "X25519", x: bobPub });
    expect(toHex(x25519SharedSecret(alice.secretKey!, bob.publicKey))).toBe(
      "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    );
  });
});

describe("publicJwk / publicKeyFromJwk", () => {
  it("round-trips and carries the thumbprint kid and extra members", async () => {
    const { publicKey } = await generateEd25519KeyPair();
    const jwk = publicJwk(publicKey, { use: "sig", alg: "EdDSA" });
    expect(jwk).toMatchObject({
      kty: "OKP",
      crv: "Ed25519",
      kid: ed25519Kid(publicKey),
      use: "sig",
    });
    expect(jwk.d).toBeUndefined();
    expect(toHex(publicKeyFromJwk(jwk))).toBe(toHex(publicKey));
    expect(publicJwk(publicKey, { kid: "k1" }).kid).toBe("k1");
  });

  it("refuses to let extra members overwrite key material", async () => {
    const { publicKey } = await generateEd25519KeyPair();
    expect(() => publicJwk(publicKey, { x: "AAAA" })).toThrow(CryptoError);
    expect(() => publicJwk(publicKey, { d: "AAAA" })).toThrow(CryptoError);
  });

  it("rejects every malformed or dangerous JWK with a typed error", async () => {
    const { publicKey, secretKey } = await generateEd25519KeyPair();
    const good = publicJwk(publicKey);
    const x25519 = generateX25519KeyPair();
    const smallOrder = toBase64Url(Uint8Array.from([1, ...new Array(31).fill(0)]));
    const bad: unknown[] = [
      null,
      "jwk",
      [],
      {},
      { ...good, kty: "EC" },
      { ...good, crv: "Ed448" },
      { ...good, crv: "X25519", x: toBase64Url(x25519.publicKey) }, // right shape, wrong curve
      { ...good, x: `${good.x}A` },
      { ...good, x: good.x.slice(0, 42) },
      { ...good, x: `${good.x.slice(0, 42)}=` },
      { ...good, x: `${good.x.slice(0, 42)}+` }, // standard alphabet
      { ...good, x: smallOrder },
      { ...good, d: toBase64Url(secretKey) }, // a private key where a public one belongs
      { ...good, alg: "RS256" },
      { ...good, use: "enc" },
      { ...good, key_ops: ["sign"] },
    ];
    for (const jwk of bad) {
      expect(() => publicKeyFromJwk(jwk), JSON.stringify(jwk)).toThrow(CryptoError);
    }
  });

  it("rejects a non-canonical base64url x (two strings naming one key)", async () => {
    const { publicKey } = await generateEd25519KeyPair();
    const x = toBase64Url(publicKey);
    // The last char of 43 encodes 4 bits of data and 2 padding bits; setting a padding bit keeps the bytes.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(x[42]!);
    const twin = x.slice(0, 42) + alphabet[last | 1];
    if (twin !== x)
      expect(() => publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: twin })).toThrow();
    const twin2 = x.slice(0, 42) + alphabet[last ^ 2];
    expect(() => publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: twin2 })).toThrow(CryptoError);
  });
});

describe("exportOkpJwk / importOkpJwk", () => {
  it("round-trips Ed25519 and X25519 private keys", async () => {
    const ed = await generateEd25519KeyPair();
    const jwk = exportOkpJwk({ crv: "Ed25519", ...ed });
    expect(jwk.kid).toBe(ed25519Kid(ed.publicKey));
    const back = await importOkpJwk(jwk);
    expect(toHex(back.secretKey!)).toBe(toHex(ed.secretKey));
    const x = generateX25519KeyPair();
    const xj = exportOkpJwk({ crv: "X25519", ...x });
    expect(xj.kid).toBe(x25519Kid(x.publicKey));
    expect(toHex((await importOkpJwk(xj)).publicKey)).toBe(toHex(x.publicKey));
    expect(exportOkpJwk({ crv: "X25519", publicKey: x.publicKey }).d).toBeUndefined();
  });

  it("rejects a private key that does not match its x, and wrong alg/use per curve", async () => {
    const a = await generateEd25519KeyPair();
    const b = await generateEd25519KeyPair();
    const mixed = { ...exportOkpJwk({ crv: "Ed25519", ...a }), x: toBase64Url(b.publicKey) };
    await expect(importOkpJwk(mixed)).rejects.toBeInstanceOf(CryptoError);
    const x = generateX25519KeyPair();
    await expect(
      importOkpJwk({ ...exportOkpJwk({ crv: "X25519", ...x }), use: "sig" }),
    ).rejects.toBeInstanceOf(CryptoError);
    await expect(
      importOkpJwk({ ...exportOkpJwk({ crv: "Ed25519", ...a }), alg: "ECDH-ES" }),
    ).rejects.toBeInstanceOf(CryptoError);
  });
});
