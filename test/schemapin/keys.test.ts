// Public keys are checked where they enter (a pin, a discovery document): a key that is not a
// point on its curve could never verify anything, so it is refused with a clear error.
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../shared/crypto";
import { fromHex, toBase64 } from "../../shared/encoding";
import { parsePublicKeyPem, SchemaPinError, spkiFromRaw } from "../../shared/schemapin";

const pem = (spki: Uint8Array) =>
  `-----BEGIN PUBLIC KEY-----\n${toBase64(spki)}\n-----END PUBLIC KEY-----\n`;

function refused(spki: Uint8Array): SchemaPinError {
  try {
    parsePublicKeyPem(pem(spki));
  } catch (e) {
    expect(e).toBeInstanceOf(SchemaPinError);
    return e as SchemaPinError;
  }
  throw new Error("accepted");
}

describe("public keys", () => {
  it("a P-256 point off the curve is refused", () => {
    // A real point (x, y) with y changed: well-formed SPKI, not on the curve.
    const onCurve =
      "04" +
      "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296" +
      "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    expect(parsePublicKeyPem(pem(spkiFromRaw("ES256", fromHex(onCurve)))).algorithm).toBe("ES256");
    const off = fromHex(onCurve);
    off[64]! ^= 0x01;
    expect(refused(spkiFromRaw("ES256", off)).message).toMatch(/not a valid P-256 point/);
  });

  it("an Ed25519 key of small order, or not canonically encoded, is refused", async () => {
    const { publicKey } = await generateEd25519KeyPair();
    expect(parsePublicKeyPem(pem(spkiFromRaw("Ed25519", publicKey))).algorithm).toBe("Ed25519");
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expect(refused(spkiFromRaw("Ed25519", identity)).message).toMatch(/not a valid Ed25519/);
    // y = p (2^255 - 19): the same point as y = 0, but not its canonical encoding.
    const nonCanonical = fromHex(`ed${"ff".repeat(30)}7f`);
    expect(refused(spkiFromRaw("Ed25519", nonCanonical)).message).toMatch(/not a valid Ed25519/);
  });
});
