// Byte encodings and RFC 8785 canonical JSON shared by every part of the core.
// Web-standard only: runs unchanged on workerd and Node.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import canonicalize from "canonicalize";

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export const utf8 = (s: string): Uint8Array => utf8Encoder.encode(s);
export const fromUtf8 = (b: Uint8Array): string => utf8Decoder.decode(b);

export const toHex = (b: Uint8Array): string => bytesToHex(b);
export function fromHex(s: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new TypeError("invalid hex");
  return hexToBytes(s);
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const B64STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Strict standard base64 (padded); rejects anything else. */
export function fromBase64(s: string): Uint8Array {
  if (!B64STD.test(s)) throw new TypeError("invalid base64");
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export function toBase64Url(b: Uint8Array): string {
  if (b.length > 1024)
    return toBase64(b).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  // Small inputs (signatures, keys, hashes: the hot path) by table: btoa plus three regex passes
  // cost several times more per signature.
  const t = B64URL_ALPHABET;
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    s += t[n >>> 18]! + t[(n >>> 12) & 63]! + t[(n >>> 6) & 63]! + t[n & 63]!;
  }
  if (i < b.length) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8);
    s += t[n >>> 18]! + t[(n >>> 12) & 63]!;
    if (i + 1 < b.length) s += t[(n >>> 6) & 63]!;
  }
  return s;
}

/** Strict unpadded base64url (RFC 4648 §5); rejects padding, other alphabets and non-canonical tails. */
export function fromBase64Url(s: string): Uint8Array {
  if (!B64URL.test(s) || s.length % 4 === 1) throw new TypeError("invalid base64url");
  const std = s.replace(/-/g, "+").replace(/_/g, "/");
  const out = fromBase64(std + "=".repeat((4 - (std.length % 4)) % 4));
  // Non-canonical encodings (unused low bits set) would let two strings name one value.
  if (toBase64Url(out) !== s) throw new TypeError("non-canonical base64url");
  return out;
}

/** RFC 8785 (JCS) canonical JSON. Throws on values JSON cannot represent. */
export function canonicalJson(value: unknown): string {
  const s = canonicalize(value);
  if (typeof s !== "string") throw new TypeError("value has no canonical JSON form");
  return s;
}

export const canonicalBytes = (value: unknown): Uint8Array => utf8(canonicalJson(value));

/** SHA-256 of the concatenation of `parts` (strings as UTF-8). */
export type Sha256Impl = (parts: readonly (Uint8Array | string)[]) => Uint8Array;

const nobleSha256: Sha256Impl = (parts) => {
  if (parts.length === 1) {
    const p = parts[0]!;
    return sha256(typeof p === "string" ? utf8(p) : p);
  }
  const h = sha256.create();
  for (const p of parts) h.update(typeof p === "string" ? utf8(p) : p);
  return h.digest();
};
let sha256Impl: Sha256Impl = nobleSha256;

/**
 * Installs a faster SHA-256 for the hot paths (audit sealing and verification, Merkle trees),
 * as @noble/ed25519 lets a host install `etc.sha512Sync`. The core stays pure; a Node entry
 * installs node:crypto's (about twice as fast as pure JS). It must return the same digests:
 * the audit and Merkle vector tests run against whichever is installed.
 */
export function installSha256(impl: Sha256Impl | undefined): void {
  sha256Impl = impl ?? nobleSha256;
}

/** SHA-256 over the concatenation of parts, with the installed implementation. */
export const sha256Concat = (...parts: (Uint8Array | string)[]): Uint8Array => sha256Impl(parts);

export const sha256Bytes = (data: Uint8Array | string): Uint8Array => sha256Impl([data]);

export const sha256Hex = (data: Uint8Array | string): string => toHex(sha256Bytes(data));

/** Constant-time comparison for MACs, digests and tokens. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Whether `value` is plain JSON (finite numbers, strings, booleans, null, arrays, plain objects)
 * no deeper than `maxDepth`. Iterative, so hostile nesting cannot overflow the stack.
 */
export function isJsonValue(value: unknown, maxDepth = 64): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > maxDepth) return false;
    if (v === null || typeof v === "string" || typeof v === "boolean") continue;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) return false;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push([x, depth + 1]);
    } else if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      for (const x of Object.values(v)) stack.push([x, depth + 1]);
    } else {
      return false;
    }
  }
  return true;
}

/**
 * At most `max` UTF-16 code units of `s`, never ending inside a surrogate pair: a cut pair would
 * leave a lone surrogate, which the API refuses and canonical JSON cannot encode.
 */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  const end = max > 0 && /[\uD800-\uDBFF]/.test(s.charAt(max - 1)) ? max - 1 : max;
  return s.slice(0, end);
}
