// X25519 (RFC 7748) on @noble/curves. Low-order public keys are rejected before the ladder runs
// (the all-zero shared secret check of RFC 7748 §6.1, done without a timing oracle).
import { x25519 } from "@noble/curves/ed25519.js";
import { assertBytes, CryptoError, randomBytes } from "./errors";

export interface X25519KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function generateX25519KeyPair(): X25519KeyPair {
  const secretKey = randomBytes(32);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(assertBytes(secretKey, 32, "X25519 secret key"));
}

export function x25519SharedSecret(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  assertBytes(secretKey, 32, "X25519 secret key");
  assertBytes(peerPublicKey, 32, "X25519 public key");
  try {
    return x25519.getSharedSecret(secretKey, peerPublicKey);
  } catch (cause) {
    throw new CryptoError("invalid_key", "X25519: low-order or invalid public key", { cause });
  }
}
