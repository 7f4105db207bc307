// Ed25519 on WebCrypto (OpenSSL in Node, BoringSSL in workerd) for speed, with @noble/ed25519 as the
// audited portable reference and fallback. Verification is strict (RFC 8032 §5.1.7 plus libsodium's
// small-order key rule) on both paths, so they agree on every input that is not crafted by a key holder.
import * as ed from "@noble/ed25519";
import { LRUCache } from "lru-cache";
import { toHex } from "../encoding";
import { assertBytes, bs, CryptoError, randomBytes } from "./errors";
import { ed25519Kid } from "./kid";

export interface Signer {
  readonly kid: string;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** Ed25519 verification under a raw 32-byte public key; never throws for a bad signature. */
export type VerifyFn = (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>;

export interface Ed25519KeyPair {
  publicKey: Uint8Array;
  /** 32-byte RFC 8032 seed. */
  secretKey: Uint8Array;
}

const ALG = { name: "Ed25519" } as const;
// PKCS#8 wrapper for a 32-byte Ed25519 seed (RFC 8410 §7): the only private import every runtime takes.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);
// Group order L, little-endian: S must be < L (RFC 8032 §5.1.7 step 1, the malleability check).
const L_LE = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

function scalarBelowOrder(sig: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = sig[32 + i]!;
    const l = L_LE[i]!;
    if (s !== l) return s < l;
  }
  return false;
}

/** Strict public key check: canonical encoding (y < p), on the curve, not of small order. */
export function isValidEd25519PublicKey(publicKey: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  try {
    return !ed.Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    return false;
  }
}

// Feature probe, once per isolate: fall back to the reference only where WebCrypto lacks Ed25519.
let nativeSupport: Promise<boolean> | undefined;
export function nativeEd25519Available(): Promise<boolean> {
  nativeSupport ??= (async () => {
    try {
      const kp = (await crypto.subtle.generateKey(ALG, false, ["sign", "verify"])) as CryptoKeyPair;
      const m = new Uint8Array(1);
      const s = await crypto.subtle.sign(ALG, kp.privateKey, m);
      return await crypto.subtle.verify(ALG, kp.publicKey, s, m);
    } catch {
      return false;
    }
  })();
  return nativeSupport;
}

export async function ed25519PublicKeyFromSeed(secretKey: Uint8Array): Promise<Uint8Array> {
  assertBytes(secretKey, 32, "Ed25519 secret key");
  return ed.getPublicKeyAsync(secretKey);
}

export async function generateEd25519KeyPair(): Promise<Ed25519KeyPair> {
  const secretKey = randomBytes(32);
  return { secretKey, publicKey: await ed25519PublicKeyFromSeed(secretKey) };
}

/** PKCS#8 DER of a 32-byte Ed25519 seed, for native importers; the caller zeroes it after use. */
export function ed25519Pkcs8(secretKey: Uint8Array): Uint8Array<ArrayBuffer> {
  assertBytes(secretKey, 32, "Ed25519 secret key");
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(PKCS8_PREFIX);
  pkcs8.set(secretKey, 16);
  return pkcs8;
}

async function importNativePrivate(secretKey: Uint8Array): Promise<CryptoKey> {
  const pkcs8 = ed25519Pkcs8(secretKey);
  try {
    return await crypto.subtle.importKey("pkcs8", pkcs8, ALG, false, ["sign"]);
  } finally {
    pkcs8.fill(0);
  }
}

/** Native WebCrypto signer (non-extractable key); the @noble reference where WebCrypto lacks Ed25519. */
export async function createSigner(secretKey: Uint8Array, kid?: string): Promise<Signer> {
  assertBytes(secretKey, 32, "Ed25519 secret key");
  const publicKey = await ed25519PublicKeyFromSeed(secretKey);
  const id = kid ?? ed25519Kid(publicKey);
  if (!(await nativeEd25519Available())) return createReferenceSigner(secretKey, id);
  const key = await importNativePrivate(secretKey);
  return {
    kid: id,
    publicKey: publicKey.slice(),
    async sign(message: Uint8Array): Promise<Uint8Array> {
      assertBytes(message, undefined, "message");
      return new Uint8Array(await crypto.subtle.sign(ALG, key, bs(message)));
    },
  };
}

/** Pure-JS signer on @noble/ed25519: the portable reference. */
export async function createReferenceSigner(secretKey: Uint8Array, kid?: string): Promise<Signer> {
  assertBytes(secretKey, 32, "Ed25519 secret key");
  const seed = secretKey.slice();
  const publicKey = await ed.getPublicKeyAsync(seed);
  return {
    kid: kid ?? ed25519Kid(publicKey),
    publicKey,
    sign: (message: Uint8Array) => {
      assertBytes(message, undefined, "message");
      return ed.signAsync(message, seed);
    },
  };
}

// Imported verification keys, by hex public key. A cached `null` remembers an invalid key, so a
// flood of requests naming one bad key costs one decode. The promise is cached, so concurrent
// first verifies share one import.
const verifyKeys = new LRUCache<string, Promise<CryptoKey | null>>({ max: 10_000 });

function verificationKey(publicKey: Uint8Array): Promise<CryptoKey | null> {
  const id = toHex(publicKey);
  let entry = verifyKeys.get(id);
  if (entry === undefined) {
    entry = isValidEd25519PublicKey(publicKey)
      ? crypto.subtle
          .importKey("raw", bs(publicKey.slice()), ALG, false, ["verify"])
          .catch(() => null)
      : Promise.resolve(null);
    verifyKeys.set(id, entry);
  }
  return entry;
}

function wellFormed(publicKey: unknown, message: unknown, signature: unknown): boolean {
  return (
    publicKey instanceof Uint8Array &&
    publicKey.length === 32 &&
    message instanceof Uint8Array &&
    signature instanceof Uint8Array &&
    signature.length === 64 &&
    scalarBelowOrder(signature)
  );
}

// Remembered strict point checks, so repeated verifies with one key decode it once.
const keyChecks = new LRUCache<string, boolean>({ max: 10_000 });

/**
 * The strict checks every verifier runs before the curve equation: lengths, S < L (no malleated
 * signatures), and a canonical, non-small-order public key. For verifiers outside this module
 * (the Node worker pool) so they cannot drift from verifyEd25519. Never throws.
 */
export function ed25519StrictPrecheck(
  publicKey: unknown,
  message: unknown,
  signature: unknown,
): boolean {
  if (!wellFormed(publicKey, message, signature)) return false;
  const id = toHex(publicKey as Uint8Array);
  let ok = keyChecks.get(id);
  if (ok === undefined) {
    ok = isValidEd25519PublicKey(publicKey as Uint8Array);
    keyChecks.set(id, ok);
  }
  return ok;
}

/** Strict Ed25519 verification on the native path. Never throws: any failure is `false`. */
export async function verifyEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    if (!wellFormed(publicKey, message, signature)) return false;
    if (!(await nativeEd25519Available()))
      return verifyEd25519Reference(publicKey, message, signature);
    const key = await verificationKey(publicKey);
    if (key === null) return false;
    return await crypto.subtle.verify(ALG, key, bs(signature), bs(message));
  } catch {
    return false;
  }
}

/** Strict Ed25519 verification on @noble/ed25519 (RFC 8032 mode, not ZIP-215). Never throws. */
export async function verifyEd25519Reference(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    if (!wellFormed(publicKey, message, signature)) return false;
    return await ed.verifyAsync(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** Like verifyEd25519 but rejects with a reason: for call sites that want to throw. */
export async function assertEd25519(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<void> {
  if (!(await verifyEd25519(publicKey, message, signature))) {
    throw new CryptoError("invalid_signature", "Ed25519 signature verification failed");
  }
}
