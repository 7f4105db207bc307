import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CryptoError, generateX25519KeyPair, openSealed, seal } from "../../shared/crypto";
import { toHex, utf8 } from "../../shared/encoding";

describe("sealed messages (X25519 + HKDF-SHA256 + ChaCha20-Poly1305)", () => {
  it("anonymous mode round-trips; every flipped bit fails", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 20 }),
        fc.nat(),
        (pt, aad, bit) => {
          const r = generateX25519KeyPair();
          const sealed = seal(pt, { recipientPublicKey: r.publicKey, aad });
          expect(toHex(openSealed(sealed, { recipientSecretKey: r.secretKey, aad }))).toBe(
            toHex(pt),
          );
          const bad = sealed.slice();
          bad[(bit >> 3) % bad.length]! ^= 1 << (bit & 7);
          expect(() => openSealed(bad, { recipientSecretKey: r.secretKey, aad })).toThrow(
            CryptoError,
          );
        },
      ),
      { numRuns: 50 },
    );
  });

  it("uses a fresh ephemeral key per message (same plaintext, different ciphertexts)", () => {
    const r = generateX25519KeyPair();
    const a = seal(utf8("same"), { recipientPublicKey: r.publicKey });
    const b = seal(utf8("same"), { recipientPublicKey: r.publicKey });
    expect(toHex(a.subarray(2, 34))).not.toBe(toHex(b.subarray(2, 34)));
    expect(toHex(a)).not.toBe(toHex(b));
  });

  it("binds the recipient and the application AAD", () => {
    const r = generateX25519KeyPair();
    const other = generateX25519KeyPair();
    const sealed = seal(utf8("hi"), { recipientPublicKey: r.publicKey, aad: utf8("ctx") });
    expect(() =>
      openSealed(sealed, { recipientSecretKey: other.secretKey, aad: utf8("ctx") }),
    ).toThrow(CryptoError);
    expect(() =>
      openSealed(sealed, { recipientSecretKey: r.secretKey, aad: utf8("ctx2") }),
    ).toThrow(CryptoError);
    expect(() => openSealed(sealed, { recipientSecretKey: r.secretKey })).toThrow(CryptoError);
  });

  it("authenticated mode binds the sender: wrong or missing sender key fails, anonymous is refused", () => {
    const r = generateX25519KeyPair();
    const s = generateX25519KeyPair();
    const mallory = generateX25519KeyPair();
    const sealed = seal(utf8("from s"), { recipientPublicKey: r.publicKey, sender: s });
    expect(sealed[1]).toBe(1);
    const opened = openSealed(sealed, {
      recipientSecretKey: r.secretKey,
      senderPublicKey: s.publicKey,
    });
    expect(new TextDecoder().decode(opened)).toBe("from s");
    expect(() =>
      openSealed(sealed, { recipientSecretKey: r.secretKey, senderPublicKey: mallory.publicKey }),
    ).toThrow(CryptoError);
    expect(() => openSealed(sealed, { recipientSecretKey: r.secretKey })).toThrow(CryptoError);
    // Downgrade: an anonymous message does not pass where a sender is expected.
    const anon = seal(utf8("x"), { recipientPublicKey: r.publicKey });
    expect(() =>
      openSealed(anon, { recipientSecretKey: r.secretKey, senderPublicKey: s.publicKey }),
    ).toThrow(CryptoError);
    // Flipping the mode byte cannot turn one into the other.
    const flipped = sealed.slice();
    flipped[1] = 0;
    expect(() => openSealed(flipped, { recipientSecretKey: r.secretKey })).toThrow(CryptoError);
  });

  it("rejects a sender public key that does not match its secret, low-order recipients and junk", () => {
    const r = generateX25519KeyPair();
    const s = generateX25519KeyPair();
    expect(() =>
      seal(utf8("x"), {
        recipientPublicKey: r.publicKey,
        sender: { secretKey: s.secretKey, publicKey: r.publicKey },
      }),
    ).toThrow(CryptoError);
    expect(() => seal(utf8("x"), { recipientPublicKey: new Uint8Array(32) })).toThrow(CryptoError);
    for (const junk of [
      new Uint8Array(0),
      new Uint8Array(49),
      Uint8Array.of(2, ...new Uint8Array(60)),
    ]) {
      expect(() => openSealed(junk, { recipientSecretKey: r.secretKey })).toThrow(CryptoError);
    }
    // An ephemeral key of low order (all zero) is refused as a decryption failure.
    const zeroEph = seal(utf8("x"), { recipientPublicKey: r.publicKey });
    zeroEph.fill(0, 2, 34);
    const err = (() => {
      try {
        openSealed(zeroEph, { recipientSecretKey: r.secretKey });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CryptoError);
    expect((err as CryptoError).code).toBe("decrypt_failed");
  });
});
