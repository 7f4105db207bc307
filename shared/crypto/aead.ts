// Authenticated encryption. AES-256-GCM runs on WebCrypto (AES-NI); ChaCha20-Poly1305 and
// XChaCha20-Poly1305 on @noble/ciphers. The high-level functions pick a fresh random nonce per
// message and prepend it; the `*Raw` functions take explicit nonces for protocols with counters.
import { chacha20poly1305, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { concatBytes } from "../encoding";
import { assertBytes, bs, CryptoError, randomBytes } from "./errors";

const EMPTY = new Uint8Array(0);
export const AES_GCM_NONCE_BYTES = 12;
export const CHACHA_NONCE_BYTES = 12;
export const XCHACHA_NONCE_BYTES = 24;
export const TAG_BYTES = 16;
// NIST SP 800-38D §8.3: at most 2^32 random 96-bit nonces per key.
const MAX_RANDOM_NONCE_MESSAGES = 2 ** 32;

function decryptFailed(cause?: unknown): CryptoError {
  return new CryptoError("decrypt_failed", "authentication failed", { cause });
}

// ---- explicit-nonce primitives (exactly the algorithms; used by protocols and by vector tests) ----

/**
 * AES-GCM with a 96-bit IV and any AES key size; output is ct || 16-byte tag. Other IV lengths are
 * refused: they go through GHASH (counter-wrap and key-leak pitfalls) and runtimes differ on them.
 */
export async function aesGcmEncryptRaw(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Promise<Uint8Array> {
  if (iv.length !== AES_GCM_NONCE_BYTES)
    throw new CryptoError("invalid_input", "AES-GCM: IV must be 96 bits");
  try {
    const k = await crypto.subtle.importKey("raw", bs(key), "AES-GCM", false, ["encrypt"]);
    const params = { name: "AES-GCM", iv: bs(iv), additionalData: bs(aad), tagLength: 128 };
    return new Uint8Array(await crypto.subtle.encrypt(params, k, bs(plaintext)));
  } catch (cause) {
    throw new CryptoError("invalid_input", "AES-GCM: bad parameters", { cause });
  }
}

export async function aesGcmDecryptRaw(
  key: Uint8Array,
  iv: Uint8Array,
  ciphertextAndTag: Uint8Array,
  aad: Uint8Array = EMPTY,
): Promise<Uint8Array> {
  if (iv.length !== AES_GCM_NONCE_BYTES || ciphertextAndTag.length < TAG_BYTES)
    throw decryptFailed();
  try {
    const k = await crypto.subtle.importKey("raw", bs(key), "AES-GCM", false, ["decrypt"]);
    const params = { name: "AES-GCM", iv: bs(iv), additionalData: bs(aad), tagLength: 128 };
    return new Uint8Array(await crypto.subtle.decrypt(params, k, bs(ciphertextAndTag)));
  } catch (cause) {
    throw decryptFailed(cause);
  }
}

export function chacha20Poly1305EncryptRaw(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  assertBytes(key, 32, "ChaCha20-Poly1305 key");
  assertBytes(nonce, CHACHA_NONCE_BYTES, "ChaCha20-Poly1305 nonce");
  return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

export function chacha20Poly1305DecryptRaw(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertextAndTag: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  if (key.length !== 32 || nonce.length !== CHACHA_NONCE_BYTES) throw decryptFailed();
  try {
    return chacha20poly1305(key, nonce, aad).decrypt(ciphertextAndTag);
  } catch (cause) {
    throw decryptFailed(cause);
  }
}

export function xchacha20Poly1305EncryptRaw(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  assertBytes(key, 32, "XChaCha20-Poly1305 key");
  assertBytes(nonce, XCHACHA_NONCE_BYTES, "XChaCha20-Poly1305 nonce");
  return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
}

export function xchacha20Poly1305DecryptRaw(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertextAndTag: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  if (key.length !== 32 || nonce.length !== XCHACHA_NONCE_BYTES) throw decryptFailed();
  try {
    return xchacha20poly1305(key, nonce, aad).decrypt(ciphertextAndTag);
  } catch (cause) {
    throw decryptFailed(cause);
  }
}

// ---- AES-256-GCM with random nonces: the product's at-rest and general-purpose AEAD ----

export const generateAeadKey = (): Uint8Array => randomBytes(32);

/** An imported AES-256-GCM key. Output format: nonce(12) || ciphertext || tag(16). */
export class Aes256Gcm {
  #used = 0;
  private constructor(private readonly key: CryptoKey) {}

  static async create(key: Uint8Array): Promise<Aes256Gcm> {
    assertBytes(key, 32, "AES-256-GCM key");
    const k = await crypto.subtle.importKey("raw", bs(key.slice()), "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
    return new Aes256Gcm(k);
  }

  async encrypt(plaintext: Uint8Array, aad: Uint8Array = EMPTY): Promise<Uint8Array> {
    assertBytes(plaintext, undefined, "plaintext");
    assertBytes(aad, undefined, "aad");
    if (++this.#used > MAX_RANDOM_NONCE_MESSAGES) {
      throw new CryptoError("limit_exceeded", "AES-256-GCM key used for 2^32 messages: rotate it");
    }
    const iv = randomBytes(AES_GCM_NONCE_BYTES);
    const params = { name: "AES-GCM", iv: bs(iv), additionalData: bs(aad), tagLength: 128 };
    const ct = new Uint8Array(await crypto.subtle.encrypt(params, this.key, bs(plaintext)));
    return concatBytes(iv, ct);
  }

  async decrypt(sealed: Uint8Array, aad: Uint8Array = EMPTY): Promise<Uint8Array> {
    if (!(sealed instanceof Uint8Array) || !(aad instanceof Uint8Array)) throw decryptFailed();
    if (sealed.length < AES_GCM_NONCE_BYTES + TAG_BYTES) throw decryptFailed();
    const iv = sealed.subarray(0, AES_GCM_NONCE_BYTES);
    const params = { name: "AES-GCM", iv: bs(iv), additionalData: bs(aad), tagLength: 128 };
    try {
      const body = bs(sealed.subarray(AES_GCM_NONCE_BYTES));
      return new Uint8Array(await crypto.subtle.decrypt(params, this.key, body));
    } catch (cause) {
      throw decryptFailed(cause);
    }
  }
}

export async function aes256GcmEncrypt(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Promise<Uint8Array> {
  return (await Aes256Gcm.create(key)).encrypt(plaintext, aad);
}

export async function aes256GcmDecrypt(
  key: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Promise<Uint8Array> {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw decryptFailed();
  return (await Aes256Gcm.create(key)).decrypt(sealed, aad);
}

/** XChaCha20-Poly1305 with a random 192-bit nonce (safe for any number of messages per key). */
export function xchacha20Poly1305Encrypt(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  const nonce = randomBytes(XCHACHA_NONCE_BYTES);
  return concatBytes(nonce, xchacha20Poly1305EncryptRaw(key, nonce, plaintext, aad));
}

export function xchacha20Poly1305Decrypt(
  key: Uint8Array,
  sealed: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  if (!(sealed instanceof Uint8Array) || sealed.length < XCHACHA_NONCE_BYTES + TAG_BYTES) {
    throw decryptFailed();
  }
  return xchacha20Poly1305DecryptRaw(
    key,
    sealed.subarray(0, XCHACHA_NONCE_BYTES),
    sealed.subarray(XCHACHA_NONCE_BYTES),
    aad,
  );
}
