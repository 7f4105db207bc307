// Private keys at rest: AES-256-GCM under a key derived from a passphrase or secret with scrypt
// (memory-hard, RFC 7914). The KDF parameters and salt travel with the blob, and the whole header is
// the AAD, so a tampered header (weaker parameters, another kid) fails authentication. Decoding is
// bounded: a blob cannot ask for more than MAX_SCRYPT_MEMORY of work.
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { z } from "zod";
import {
  Aes256Gcm,
  CryptoError,
  ed25519Kid,
  ed25519PublicKeyFromSeed,
  type OkpCurve,
  randomBytes,
  x25519Kid,
  x25519PublicKey,
} from "../crypto";
import { canonicalBytes, fromBase64Url, toBase64Url, utf8 } from "../encoding";

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** OWASP's scrypt recommendation (128 MiB). Tests may go down to MIN_SCRYPT_N. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };
export const MIN_SCRYPT_N = 2 ** 14;
const MAX_SCRYPT_N = 2 ** 20;
const MAX_SCRYPT_MEMORY = 1024 ** 3;

const headerSchema = z.strictObject({
  v: z.literal(1),
  type: z.literal("sigil-encrypted-key"),
  kid: z.string().min(1).max(128),
  crv: z.enum(["Ed25519", "X25519"]),
  kdf: z.strictObject({
    alg: z.literal("scrypt"),
    N: z.number().int(),
    r: z.number().int().min(1).max(32),
    p: z.number().int().min(1).max(16),
    salt: z.string().min(22).max(88),
  }),
  aead: z.strictObject({ alg: z.literal("A256GCM") }),
});
const blobSchema = headerSchema.extend({ data: z.string().min(1).max(4096) });

export type EncryptedKey = z.infer<typeof blobSchema>;

function checkParams(p: ScryptParams): void {
  const pow2 = Number.isInteger(p.N) && p.N > 0 && (p.N & (p.N - 1)) === 0;
  if (!pow2 || p.N < MIN_SCRYPT_N || p.N > MAX_SCRYPT_N || 128 * p.N * p.r > MAX_SCRYPT_MEMORY) {
    throw new CryptoError("invalid_input", "scrypt parameters out of bounds");
  }
}

async function deriveKey(
  secret: string | Uint8Array,
  salt: Uint8Array,
  p: ScryptParams,
): Promise<Uint8Array> {
  const pass = typeof secret === "string" ? utf8(secret) : secret;
  if (!(pass instanceof Uint8Array) || pass.length === 0) {
    throw new CryptoError("invalid_input", "empty passphrase");
  }
  return scryptAsync(pass, salt, { ...p, dkLen: 32, maxmem: MAX_SCRYPT_MEMORY + 4096 });
}

async function publicKeyFor(crv: OkpCurve, secretKey: Uint8Array): Promise<Uint8Array> {
  return crv === "Ed25519" ? ed25519PublicKeyFromSeed(secretKey) : x25519PublicKey(secretKey);
}

const kidFor = (crv: OkpCurve, publicKey: Uint8Array): string =>
  crv === "Ed25519" ? ed25519Kid(publicKey) : x25519Kid(publicKey);

export async function encryptSecretKey(
  key: { crv: OkpCurve; secretKey: Uint8Array },
  secret: string | Uint8Array,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<EncryptedKey> {
  checkParams(params);
  if (!(key.secretKey instanceof Uint8Array) || key.secretKey.length !== 32) {
    throw new CryptoError("invalid_key", "secret key must be 32 bytes");
  }
  const salt = randomBytes(16);
  const header: z.infer<typeof headerSchema> = {
    v: 1,
    type: "sigil-encrypted-key",
    kid: kidFor(key.crv, await publicKeyFor(key.crv, key.secretKey)),
    crv: key.crv,
    kdf: { alg: "scrypt", N: params.N, r: params.r, p: params.p, salt: toBase64Url(salt) },
    aead: { alg: "A256GCM" },
  };
  const kek = await deriveKey(secret, salt, params);
  try {
    const aead = await Aes256Gcm.create(kek);
    const data = await aead.encrypt(key.secretKey, canonicalBytes(header));
    return { ...header, data: toBase64Url(data) };
  } finally {
    kek.fill(0);
  }
}

export interface DecryptedKey {
  kid: string;
  crv: OkpCurve;
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** Decrypts a blob; fails closed (typed CryptoError) on any malformed field, wrong secret or tampering. */
export async function decryptSecretKey(
  blob: unknown,
  secret: string | Uint8Array,
): Promise<DecryptedKey> {
  const parsed = blobSchema.safeParse(blob);
  if (!parsed.success) throw new CryptoError("invalid_input", "not a Sigil encrypted key");
  const { data, ...header } = parsed.data;
  const params = { N: header.kdf.N, r: header.kdf.r, p: header.kdf.p };
  checkParams(params);
  let salt: Uint8Array;
  let sealed: Uint8Array;
  try {
    salt = fromBase64Url(header.kdf.salt);
    sealed = fromBase64Url(data);
  } catch (cause) {
    throw new CryptoError("invalid_input", "encrypted key: bad base64url", { cause });
  }
  const kek = await deriveKey(secret, salt, params);
  let secretKey: Uint8Array;
  try {
    secretKey = await (await Aes256Gcm.create(kek)).decrypt(sealed, canonicalBytes(header));
  } catch (cause) {
    throw new CryptoError("decrypt_failed", "wrong passphrase or tampered key file", { cause });
  } finally {
    kek.fill(0);
  }
  if (secretKey.length !== 32)
    throw new CryptoError("invalid_key", "decrypted key has the wrong size");
  const publicKey = await publicKeyFor(header.crv, secretKey);
  if (kidFor(header.crv, publicKey) !== header.kid) {
    throw new CryptoError("invalid_key", "decrypted key does not match its kid");
  }
  return { kid: header.kid, crv: header.crv, publicKey, secretKey };
}
