// Sealed messages: one-shot public-key encryption to an X25519 recipient. Each message uses a fresh
// ephemeral sender key (deleted after use: forward secrecy against sender compromise), HKDF-SHA256
// key derivation, and ChaCha20-Poly1305. Both the KDF input and the AAD bind the ephemeral key, the
// recipient key and the sender key, so a ciphertext cannot be re-addressed or re-attributed.
// Optional sender authentication (HPKE "auth" mode style): a second DH with the sender's static key.
//
// Wire format: 0x01 (version) | mode (0 anonymous, 1 authenticated) | ephemeral public key (32) |
//              ciphertext || tag (16)
import { concatBytes, equalBytes, utf8 } from "../encoding";
import { chacha20Poly1305DecryptRaw, chacha20Poly1305EncryptRaw, TAG_BYTES } from "./aead";
import { assertBytes, CryptoError } from "./errors";
import { hkdfSha256 } from "./kdf";
import { generateX25519KeyPair, x25519PublicKey, x25519SharedSecret } from "./x25519";

const VERSION = 0x01;
const HEADER_BYTES = 2 + 32;
const NO_SENDER = new Uint8Array(32);
const ZERO_NONCE = new Uint8Array(12); // the key is unique per message, so one nonce is safe
const LABEL = utf8("sigil/sealed/v1");

export interface SealOptions {
  recipientPublicKey: Uint8Array;
  /** Static X25519 key of the sender: makes the message attributable to it. */
  sender?: { secretKey: Uint8Array; publicKey?: Uint8Array };
  /** Application context bound into the AAD (e.g. a canonical JSON header). */
  aad?: Uint8Array;
}

export interface OpenOptions {
  recipientSecretKey: Uint8Array;
  /** Required to open an authenticated message; when given, anonymous messages are rejected. */
  senderPublicKey?: Uint8Array;
  aad?: Uint8Array;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function bindings(
  header: Uint8Array,
  recipient: Uint8Array,
  sender: Uint8Array,
  aad: Uint8Array,
): { info: Uint8Array; aad: Uint8Array } {
  const transcript = concatBytes(header, recipient, sender, u32(aad.length), aad);
  return { info: concatBytes(LABEL, transcript), aad: transcript };
}

export function seal(plaintext: Uint8Array, opts: SealOptions): Uint8Array {
  assertBytes(plaintext, undefined, "plaintext");
  const recipient = assertBytes(opts.recipientPublicKey, 32, "recipient public key");
  const aad = opts.aad === undefined ? new Uint8Array(0) : assertBytes(opts.aad, undefined, "aad");
  const eph = generateX25519KeyPair();
  try {
    const header = concatBytes(Uint8Array.of(VERSION, opts.sender ? 1 : 0), eph.publicKey);
    let ikm: Uint8Array = x25519SharedSecret(eph.secretKey, recipient);
    let senderPub: Uint8Array = NO_SENDER;
    if (opts.sender) {
      senderPub = x25519PublicKey(opts.sender.secretKey);
      if (opts.sender.publicKey && !equalBytes(senderPub, opts.sender.publicKey)) {
        throw new CryptoError("invalid_key", "sender public key does not match its secret key");
      }
      ikm = concatBytes(ikm, x25519SharedSecret(opts.sender.secretKey, recipient));
    }
    const b = bindings(header, recipient, senderPub, aad);
    const key = hkdfSha256(ikm, undefined, b.info, 32);
    ikm.fill(0);
    return concatBytes(header, chacha20Poly1305EncryptRaw(key, ZERO_NONCE, plaintext, b.aad));
  } finally {
    eph.secretKey.fill(0);
  }
}

export function openSealed(sealed: Uint8Array, opts: OpenOptions): Uint8Array {
  const fail = (why: string) => new CryptoError("decrypt_failed", `sealed message: ${why}`);
  if (!(sealed instanceof Uint8Array) || sealed.length < HEADER_BYTES + TAG_BYTES) {
    throw fail("too short");
  }
  if (sealed[0] !== VERSION) throw fail("unknown version");
  const mode = sealed[1];
  if (mode !== 0 && mode !== 1) throw fail("unknown mode");
  if (opts.senderPublicKey !== undefined && mode !== 1)
    throw fail("expected an authenticated sender");
  if (mode === 1 && opts.senderPublicKey === undefined) throw fail("sender key required");
  const secret = assertBytes(opts.recipientSecretKey, 32, "recipient secret key");
  const aad = opts.aad === undefined ? new Uint8Array(0) : assertBytes(opts.aad, undefined, "aad");
  const header = sealed.subarray(0, HEADER_BYTES);
  const ephPub = sealed.subarray(2, HEADER_BYTES);
  try {
    let ikm: Uint8Array = x25519SharedSecret(secret, ephPub);
    let senderPub: Uint8Array = NO_SENDER;
    if (mode === 1) {
      senderPub = assertBytes(opts.senderPublicKey, 32, "sender public key");
      ikm = concatBytes(ikm, x25519SharedSecret(secret, senderPub));
    }
    const b = bindings(header, x25519PublicKey(secret), senderPub, aad);
    const key = hkdfSha256(ikm, undefined, b.info, 32);
    ikm.fill(0);
    return chacha20Poly1305DecryptRaw(key, ZERO_NONCE, sealed.subarray(HEADER_BYTES), b.aad);
  } catch (cause) {
    if (cause instanceof CryptoError && cause.code === "decrypt_failed") throw cause;
    throw new CryptoError("decrypt_failed", "sealed message: key agreement failed", { cause });
  }
}
