// A Signer from a raw 32-byte Ed25519 seed: WebCrypto when the runtime has Ed25519 (fast,
// the key stays non-extractable), @noble/ed25519 otherwise (older browsers).
import * as ed from "@noble/ed25519";
import { ed25519Kid } from "../shared/crypto/kid";
import { concatBytes, fromBase64Url, fromHex, toBase64Url } from "../shared/encoding";
import type { Signer } from "../shared/httpsig";

// DER PrivateKeyInfo header for an Ed25519 seed (RFC 8410 §7).
const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");

/** A signer for a 32-byte seed; the kid defaults to the key's RFC 7638 thumbprint, as the service names keys. */
export async function signerFromSecretKey(secretKey: Uint8Array, kidIn?: string): Promise<Signer> {
  if (secretKey.length !== 32) throw new TypeError("an Ed25519 secret key is a 32-byte seed");
  const seed = new Uint8Array(secretKey);
  try {
    const extractable = await crypto.subtle.importKey(
      "pkcs8",
      concatBytes(PKCS8_ED25519_PREFIX, seed) as Uint8Array<ArrayBuffer>,
      { name: "Ed25519" },
      true,
      ["sign"],
    );
    const jwk = await crypto.subtle.exportKey("jwk", extractable);
    if (typeof jwk.x !== "string") throw new Error("no public key in JWK");
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: "OKP", crv: "Ed25519", x: jwk.x, d: toBase64Url(seed) },
      { name: "Ed25519" },
      false,
      ["sign"],
    );
    const publicKey = fromBase64Url(jwk.x);
    return {
      kid: kidIn ?? ed25519Kid(publicKey),
      publicKey,
      sign: async (m) =>
        new Uint8Array(await crypto.subtle.sign("Ed25519", key, m as Uint8Array<ArrayBuffer>)),
    };
  } catch {
    const publicKey = await ed.getPublicKeyAsync(seed);
    return { kid: kidIn ?? ed25519Kid(publicKey), publicKey, sign: (m) => ed.signAsync(m, seed) };
  }
}
