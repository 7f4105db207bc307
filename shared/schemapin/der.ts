// Strict DER for ECDSA P-256 signatures: SEQUENCE { INTEGER r, INTEGER s }, short-form lengths,
// minimal non-negative integers, no trailing bytes, 0 < r,s < n. Web Crypto wants IEEE P1363
// (r||s, 32 bytes each), so this is also the converter. BER variants are rejected: accepting
// them would make one signature have many encodings.
import { SchemaPinError } from "./errors";

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function bytesToBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

const reject = (why: string): never => {
  throw new SchemaPinError("signature_invalid", `bad DER signature: ${why}`);
};

function readInteger(der: Uint8Array, off: number): { value: Uint8Array; next: number } {
  if (der[off] !== 0x02) reject("expected INTEGER");
  const len = der[off + 1];
  if (len === undefined || len === 0 || len >= 0x80) reject("bad INTEGER length");
  const start = off + 2;
  const end = start + len!;
  if (end > der.length) reject("truncated INTEGER");
  const v = der.subarray(start, end);
  if (v[0]! & 0x80) reject("negative INTEGER");
  if (v[0] === 0 && v.length > 1 && !(v[1]! & 0x80)) reject("non-minimal INTEGER");
  const mag = v[0] === 0 ? v.subarray(1) : v;
  if (mag.length > 32) reject("INTEGER too large");
  const n = bytesToBigInt(mag);
  if (n === 0n || n >= P256_N) reject("INTEGER out of range");
  const out = new Uint8Array(32);
  out.set(mag, 32 - mag.length);
  return { value: out, next: end };
}

/** DER ECDSA-P256 signature → 64-byte P1363 (r||s). Throws signature_invalid. */
export function derToP1363(der: Uint8Array): Uint8Array {
  if (der.length < 8 || der.length > 72) reject("bad length");
  if (der[0] !== 0x30) reject("expected SEQUENCE");
  if (der[1]! >= 0x80 || der[1] !== der.length - 2) reject("bad SEQUENCE length");
  const r = readInteger(der, 2);
  const s = readInteger(der, r.next);
  if (s.next !== der.length) reject("trailing bytes");
  const out = new Uint8Array(64);
  out.set(r.value, 0);
  out.set(s.value, 32);
  return out;
}

function minimalInteger(x: Uint8Array): Uint8Array {
  let i = 0;
  while (i < x.length - 1 && x[i] === 0) i++;
  const mag = x.subarray(i);
  if (mag[0]! & 0x80) {
    const padded = new Uint8Array(mag.length + 1);
    padded.set(mag, 1);
    return padded;
  }
  return mag;
}

/** 64-byte P1363 (r||s) → DER. Used when signing (tests, tools). */
export function p1363ToDer(sig: Uint8Array): Uint8Array {
  if (sig.length !== 64) throw new TypeError("P1363 signature must be 64 bytes");
  const r = minimalInteger(sig.subarray(0, 32));
  const s = minimalInteger(sig.subarray(32));
  const body = r.length + s.length + 4;
  const out = new Uint8Array(body + 2);
  out.set([0x30, body, 0x02, r.length], 0);
  out.set(r, 4);
  out.set([0x02, s.length], 4 + r.length);
  out.set(s, 6 + r.length);
  return out;
}
