// HKDF-SHA256 (RFC 5869) and HMAC-SHA256 on @noble/hashes: synchronous, identical on every runtime.
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { equalBytes } from "../encoding";
import { assertBytes, CryptoError } from "./errors";

const HKDF_MAX = 255 * 32;

export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array | undefined,
  info: Uint8Array,
  length: number,
): Uint8Array {
  assertBytes(ikm, undefined, "ikm");
  if (!Number.isInteger(length) || length < 1 || length > HKDF_MAX) {
    throw new CryptoError("invalid_input", `HKDF-SHA256 output length must be 1..${HKDF_MAX}`);
  }
  return hkdf(sha256, ikm, salt, info, length);
}

export const hmacSha256 = (key: Uint8Array, message: Uint8Array): Uint8Array =>
  hmac(sha256, assertBytes(key, undefined, "key"), assertBytes(message, undefined, "message"));

// Tags shorter than 128 bits are too easy to forge by guessing.
const MIN_TAG_BYTES = 16;

/**
 * Constant-time HMAC-SHA256 check. The tag must be exactly `tagBytes` long (default 32, the full
 * tag; a truncated tag of 16..31 bytes must be asked for explicitly). Never throws.
 */
export function verifyHmacSha256(
  key: Uint8Array,
  message: Uint8Array,
  tag: Uint8Array,
  tagBytes = 32,
): boolean {
  try {
    if (!Number.isInteger(tagBytes) || tagBytes < MIN_TAG_BYTES || tagBytes > 32) return false;
    if (!(tag instanceof Uint8Array) || tag.length !== tagBytes) return false;
    return equalBytes(hmacSha256(key, message).subarray(0, tagBytes), tag);
  } catch {
    return false;
  }
}
