// Ports for RFC 9421 signing/verification. Signer and VerifyFn are shared/crypto's (types only:
// callers inject the implementation).
export type { Signer, VerifyFn } from "../crypto";

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
