// Key ids are RFC 7638 JWK thumbprints: SHA-256 over the canonical required members, base64url.
// For OKP keys (RFC 8037 §2) the required members are crv, kty and x, in that order.
import { canonicalJson, sha256Bytes, toBase64Url } from "../encoding";
import { assertBytes } from "./errors";

export type OkpCurve = "Ed25519" | "X25519";

export function okpThumbprint(crv: OkpCurve, publicKey: Uint8Array): string {
  assertBytes(publicKey, 32, `${crv} public key`);
  return toBase64Url(sha256Bytes(canonicalJson({ crv, kty: "OKP", x: toBase64Url(publicKey) })));
}

/** RFC 7638 thumbprint of an Ed25519 public key: the kid used everywhere in Sigil. */
export const ed25519Kid = (publicKey: Uint8Array): string => okpThumbprint("Ed25519", publicKey);

export const x25519Kid = (publicKey: Uint8Array): string => okpThumbprint("X25519", publicKey);
