import { describe, expect, it } from "vitest";
import {
  CryptoError,
  ed25519Kid,
  generateEd25519KeyPair,
  generateX25519KeyPair,
} from "../../shared/crypto";
import { fromBase64Url, toBase64Url, toHex } from "../../shared/encoding";
import { decryptSecretKey, encryptSecretKey, MIN_SCRYPT_N } from "../../shared/keys";

const FAST = { N: MIN_SCRYPT_N, r: 8, p: 1 };

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(CryptoError);
  return (e as CryptoError).code;
}

describe("private keys at rest (scrypt + AES-256-GCM)", () => {
  it("round-trips Ed25519 and X25519 keys; the blob carries its KDF parameters and kid", async () => {
    const ed = await generateEd25519KeyPair();
    const blob = await encryptSecretKey(
      { crv: "Ed25519", secretKey: ed.secretKey },
      "correct horse",
      FAST,
    );
    expect(blob).toMatchObject({ v: 1, kid: ed25519Kid(ed.publicKey), crv: "Ed25519" });
    expect(blob.kdf).toMatchObject({ alg: "scrypt", N: FAST.N, r: 8, p: 1 });
    expect(JSON.stringify(blob)).not.toContain(Buffer.from(ed.secretKey).toString("base64url"));
    const back = await decryptSecretKey(JSON.parse(JSON.stringify(blob)), "correct horse");
    expect(toHex(back.secretKey)).toBe(toHex(ed.secretKey));
    expect(toHex(back.publicKey)).toBe(toHex(ed.publicKey));
    const x = generateX25519KeyPair();
    const xb = await encryptSecretKey(
      { crv: "X25519", secretKey: x.secretKey },
      new Uint8Array([1, 2, 3]),
      FAST,
    );
    expect(toHex((await decryptSecretKey(xb, new Uint8Array([1, 2, 3]))).publicKey)).toBe(
      toHex(x.publicKey),
    );
  });

  it("uses a fresh salt and nonce each time", async () => {
    const { secretKey } = await generateEd25519KeyPair();
    const a = await encryptSecretKey({ crv: "Ed25519", secretKey }, "pw", FAST);
    const b = await encryptSecretKey({ crv: "Ed25519", secretKey }, "pw", FAST);
    expect(a.kdf.salt).not.toBe(b.kdf.salt);
    expect(a.data).not.toBe(b.data);
  });

  it("fails closed on a wrong passphrase and on any tampered field", async () => {
    // Always a different value (overwriting the tail with a constant could leave it unchanged).
    const flipByte = (b64url: string) => {
      const b = fromBase64Url(b64url);
      b[0]! ^= 0x01;
      return toBase64Url(b);
    };
    const { secretKey } = await generateEd25519KeyPair();
    const other = await generateEd25519KeyPair();
    const blob = await encryptSecretKey({ crv: "Ed25519", secretKey }, "pw", FAST);
    expect(await codeOf(decryptSecretKey(blob, "pW"))).toBe("decrypt_failed");
    const tampered: unknown[] = [
      { ...blob, kid: ed25519Kid(other.publicKey) }, // relabelled: header is AAD
      { ...blob, kdf: { ...blob.kdf, r: 9 } },
      { ...blob, kdf: { ...blob.kdf, salt: flipByte(blob.kdf.salt) } },
      { ...blob, data: flipByte(blob.data) },
    ];
    for (const t of tampered)
      expect(await codeOf(decryptSecretKey(t, "pw"))).toBe("decrypt_failed");
  });

  it("refuses malformed blobs and parameters outside the bounds before doing any work", async () => {
    const { secretKey } = await generateEd25519KeyPair();
    const blob = await encryptSecretKey({ crv: "Ed25519", secretKey }, "pw", FAST);
    const bad: unknown[] = [
      null,
      "x",
      { ...blob, v: 2 },
      { ...blob, extra: 1 },
      { ...blob, kdf: { ...blob.kdf, N: 2 ** 10 } }, // downgrade
      { ...blob, kdf: { ...blob.kdf, N: 2 ** 24 } }, // memory bomb
      { ...blob, kdf: { ...blob.kdf, N: 3 * 2 ** 14 } },
      { ...blob, aead: { alg: "none" } },
      { ...blob, data: "***" },
    ];
    for (const b of bad) expect(await codeOf(decryptSecretKey(b, "pw"))).toBe("invalid_input");
    expect(
      await codeOf(encryptSecretKey({ crv: "Ed25519", secretKey }, "pw", { N: 1024, r: 8, p: 1 })),
    ).toBe("invalid_input");
    expect(await codeOf(encryptSecretKey({ crv: "Ed25519", secretKey }, "", FAST))).toBe(
      "invalid_input",
    );
  });
});
