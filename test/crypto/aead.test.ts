// Round-trip and tamper tests for AES-256-GCM, XChaCha20-Poly1305, HKDF and HMAC wrappers.
import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Aes256Gcm,
  aes256GcmDecrypt,
  aes256GcmEncrypt,
  CryptoError,
  generateAeadKey,
  hkdfSha256,
  hmacSha256,
  verifyHmacSha256,
  xchacha20Poly1305Decrypt,
  xchacha20Poly1305Encrypt,
} from "../../shared/crypto";
import { toHex, utf8 } from "../../shared/encoding";

function flip(b: Uint8Array, bit: number): Uint8Array {
  const o = b.slice();
  o[(bit >> 3) % o.length]! ^= 1 << (bit & 7);
  return o;
}

describe("AES-256-GCM", () => {
  it("round-trips with AAD; any flipped bit, wrong AAD or wrong key fails with decrypt_failed", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.nat(),
        async (pt, aad, bit) => {
          const key = generateAeadKey();
          const aead = await Aes256Gcm.create(key);
          const sealed = await aead.encrypt(pt, aad);
          expect(sealed.length).toBe(12 + pt.length + 16);
          expect(toHex(await aead.decrypt(sealed, aad))).toBe(toHex(pt));
          expect(toHex(await aes256GcmDecrypt(key, sealed, aad))).toBe(toHex(pt));
          const err = await aead
            .decrypt(flip(sealed, bit % (sealed.length * 8)), aad)
            .catch((e) => e);
          expect(err).toBeInstanceOf(CryptoError);
          expect((err as CryptoError).code).toBe("decrypt_failed");
          await expect(aead.decrypt(sealed, utf8("other"))).rejects.toBeInstanceOf(CryptoError);
          await expect(aes256GcmDecrypt(generateAeadKey(), sealed, aad)).rejects.toBeInstanceOf(
            CryptoError,
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it("uses a fresh 96-bit nonce per message", async () => {
    const key = generateAeadKey();
    const nonces = new Set<string>();
    for (let i = 0; i < 200; i++) {
      nonces.add(toHex((await aes256GcmEncrypt(key, utf8("same"))).subarray(0, 12)));
    }
    expect(nonces.size).toBe(200);
  });

  it("refuses non-256-bit keys and truncated input", async () => {
    for (const n of [16, 24, 31, 33]) {
      await expect(Aes256Gcm.create(new Uint8Array(n))).rejects.toBeInstanceOf(CryptoError);
    }
    const key = generateAeadKey();
    const sealed = await aes256GcmEncrypt(key, new Uint8Array(0));
    await expect(aes256GcmDecrypt(key, sealed.subarray(0, 27))).rejects.toBeInstanceOf(CryptoError);
    expect(toHex(await aes256GcmDecrypt(key, sealed))).toBe("");
  });
});

describe("XChaCha20-Poly1305", () => {
  it("round-trips with AAD; tampering fails", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.nat(),
        (pt, aad, bit) => {
          const key = generateAeadKey();
          const sealed = xchacha20Poly1305Encrypt(key, pt, aad);
          expect(toHex(xchacha20Poly1305Decrypt(key, sealed, aad))).toBe(toHex(pt));
          expect(() =>
            xchacha20Poly1305Decrypt(key, flip(sealed, bit % (sealed.length * 8)), aad),
          ).toThrow(CryptoError);
          expect(() => xchacha20Poly1305Decrypt(key, sealed, utf8("x"))).toThrow(CryptoError);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("HKDF-SHA256 and HMAC-SHA256", () => {
  it("RFC 5869 test case 1", () => {
    const okm = hkdfSha256(
      new Uint8Array(22).fill(0x0b),
      Uint8Array.from(Buffer.from("000102030405060708090a0b0c", "hex")),
      Uint8Array.from(Buffer.from("f0f1f2f3f4f5f6f7f8f9", "hex")),
      42,
    );
    expect(toHex(okm)).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });

  it("rejects output lengths outside 1..8160", () => {
    for (const n of [0, -1, 1.5, 255 * 32 + 1]) {
      expect(() => hkdfSha256(utf8("k"), undefined, utf8("i"), n)).toThrow(CryptoError);
    }
  });

  it("HMAC verifies its own tag, rejects any other, and never accepts truncation implicitly", () => {
    const key = utf8("key");
    const tag = hmacSha256(key, utf8("msg"));
    expect(verifyHmacSha256(key, utf8("msg"), tag)).toBe(true);
    expect(verifyHmacSha256(key, utf8("msh"), tag)).toBe(false);
    expect(verifyHmacSha256(key, utf8("msg"), flip(tag, 255))).toBe(false);
    expect(verifyHmacSha256(key, utf8("msg"), tag.subarray(0, 16))).toBe(false);
    expect(verifyHmacSha256(key, utf8("msg"), tag.subarray(0, 16), 16)).toBe(true);
    expect(verifyHmacSha256(key, utf8("msg"), tag.subarray(0, 8), 8)).toBe(false);
  });
});
