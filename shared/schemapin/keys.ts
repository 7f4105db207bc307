// Public keys as SchemaPin ships them: PEM "PUBLIC KEY" (SPKI). We accept exactly two shapes,
// byte for byte, so a key has one DER encoding and therefore one fingerprint:
//   ECDSA P-256, uncompressed point (what every reference SDK exports), and Ed25519.
import { p256 } from "@noble/curves/nist.js";
import { isValidEd25519PublicKey } from "../crypto";
import { concatBytes, equalBytes, fromBase64, fromHex, sha256Hex, toBase64 } from "../encoding";
import { SchemaPinError } from "./errors";

export type KeyAlgorithm = "ES256" | "Ed25519";

export interface ParsedPublicKey {
  algorithm: KeyAlgorithm;
  /** The SPKI DER, exactly as parsed (fingerprint input). */
  spki: Uint8Array;
  /** Raw key: 65-byte uncompressed P-256 point, or 32-byte Ed25519 key. */
  raw: Uint8Array;
  /** `sha256:` + lowercase hex of SHA-256 over the SPKI DER. */
  fingerprint: string;
}

// SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) 04||X||Y }
const P256_SPKI_PREFIX = fromHex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
// SEQUENCE { SEQUENCE { id-Ed25519 }, BIT STRING (0 unused bits) key }
const ED25519_SPKI_PREFIX = fromHex("302a300506032b6570032100");

export const MAX_PEM_LENGTH = 4096;
export const FINGERPRINT_RE = /^sha256:[0-9a-f]{64}$/;

export const fingerprintOf = (spki: Uint8Array): string => `sha256:${sha256Hex(spki)}`;

function onP256(raw: Uint8Array): boolean {
  try {
    p256.Point.fromBytes(raw); // throws unless the point is on the curve
    return true;
  } catch {
    return false;
  }
}

const notAPoint = (curve: string) =>
  new SchemaPinError("key_not_found", `public key is not a valid ${curve} point`);

export function parseSpki(spki: Uint8Array): ParsedPublicKey {
  if (
    spki.length === P256_SPKI_PREFIX.length + 65 &&
    equalBytes(spki.subarray(0, P256_SPKI_PREFIX.length), P256_SPKI_PREFIX) &&
    spki[P256_SPKI_PREFIX.length] === 0x04
  ) {
    const raw = spki.slice(P256_SPKI_PREFIX.length);
    // A point off the curve could never verify anything: refuse it here, where it is pinned.
    if (!onP256(raw)) throw notAPoint("P-256");
    return { algorithm: "ES256", spki, raw, fingerprint: fingerprintOf(spki) };
  }
  if (
    spki.length === ED25519_SPKI_PREFIX.length + 32 &&
    equalBytes(spki.subarray(0, ED25519_SPKI_PREFIX.length), ED25519_SPKI_PREFIX)
  ) {
    const raw = spki.slice(ED25519_SPKI_PREFIX.length);
    // Canonical encoding, on the curve, not of small order: the core's strict key check.
    if (!isValidEd25519PublicKey(raw)) throw notAPoint("Ed25519");
    return { algorithm: "Ed25519", spki, raw, fingerprint: fingerprintOf(spki) };
  }
  throw new SchemaPinError(
    "key_not_found",
    "public key is not an uncompressed P-256 or an Ed25519 SPKI",
  );
}

const PEM_RE =
  /^\s*-----BEGIN PUBLIC KEY-----\r?\n((?:[A-Za-z0-9+/=]+\r?\n)*[A-Za-z0-9+/=]*)\r?\n?-----END PUBLIC KEY-----\s*$/;

/** Parses a PEM SPKI public key (one block, strict base64). Throws key_not_found. */
export function parsePublicKeyPem(pem: string): ParsedPublicKey {
  if (pem.length > MAX_PEM_LENGTH) throw new SchemaPinError("key_not_found", "PEM too long");
  const m = PEM_RE.exec(pem);
  if (!m) throw new SchemaPinError("key_not_found", "not a PEM PUBLIC KEY block");
  let der: Uint8Array;
  try {
    der = fromBase64(m[1]!.replace(/\r?\n/g, ""));
  } catch {
    throw new SchemaPinError("key_not_found", "PEM body is not valid base64");
  }
  return parseSpki(der);
}

/** PEM SPKI for a key, 64-column lines (as OpenSSL and the SDKs write it). */
export function spkiToPem(spki: Uint8Array): string {
  const b64 = toBase64(spki);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join("\n")}\n-----END PUBLIC KEY-----\n`;
}

/** SPKI DER from a raw key (for tests and for callers holding raw Ed25519 keys). */
export function spkiFromRaw(algorithm: KeyAlgorithm, raw: Uint8Array): Uint8Array {
  return algorithm === "ES256"
    ? concatBytes(P256_SPKI_PREFIX, raw)
    : concatBytes(ED25519_SPKI_PREFIX, raw);
}
