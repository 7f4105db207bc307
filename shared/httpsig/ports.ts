// Ports for RFC 9421 signing/verification. Signer and VerifyFn mirror shared/crypto's shapes
// structurally, so this folder does not depend on that module's implementation.

/** Holds a private key; signs raw bytes (Ed25519 here). */
export interface Signer {
  readonly kid: string;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** Ed25519 verification of `signature` over `message` under a raw 32-byte public key. */
export type VerifyFn = (
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>;

/** An active key the resolver found; callers may extend it (role, subject, ...). */
export interface ActiveKey {
  readonly status: "active";
  readonly publicKey: Uint8Array;
}

/** The resolver decides: a usable key, or why not (unknown, revoked, rotated out, ...). */
export type KeyLookup<K extends ActiveKey = ActiveKey> =
  | K
  | { readonly status: "unknown" | "revoked"; readonly reason?: string };

/** Looks a `keyid` up. Store failures should reject: verification then fails closed. */
export type KeyResolver<K extends ActiveKey = ActiveKey> = (keyid: string) => Promise<KeyLookup<K>>;

/** Remembers nonces per key for a TTL. `true` means the nonce was fresh and is now stored. */
export interface ReplayCache {
  checkAndStore(keyid: string, nonce: string, ttlSeconds: number): Promise<boolean>;
}
