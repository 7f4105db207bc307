// The KeyRegistry port and its in-memory adapter. Every mutation returns the record an audit event
// needs (see keyAuditEvent); the caller appends key.created / key.rotated / key.revoked.
import {
  byCreation,
  cloneRecord,
  type KeyRecord,
  KeyRegistryError,
  type KeyRole,
  newRecord,
  type RegisterKeyInput,
  type RevokeOptions,
  type RotateOptions,
  revocation,
  rotation,
  validAt,
} from "./record";

export interface KeyRegistry {
  /** Adds an active key; fails with "exists" if its kid is known (even if rotated or revoked). */
  register(input: RegisterKeyInput): Promise<KeyRecord>;
  get(kid: string): Promise<KeyRecord | undefined>;
  /** All keys (or those of one role), oldest first. */
  list(role?: KeyRole): Promise<KeyRecord[]>;
  /** Retires an active key in favour of a new one, atomically; returns the new record. */
  rotate(
    kid: string,
    newPublicKey: Uint8Array,
    now: number,
    opts?: RotateOptions,
  ): Promise<KeyRecord>;
  /** Revokes a key (active or rotated); returns the updated record. */
  revoke(kid: string, now: number, opts?: RevokeOptions): Promise<KeyRecord>;
}

export class MemoryKeyRegistry implements KeyRegistry {
  readonly #records = new Map<string, KeyRecord>();

  async register(input: RegisterKeyInput): Promise<KeyRecord> {
    const r = newRecord(input);
    if (this.#records.has(r.kid))
      throw new KeyRegistryError("exists", `key ${r.kid} already registered`);
    this.#records.set(r.kid, r);
    return cloneRecord(r);
  }

  async get(kid: string): Promise<KeyRecord | undefined> {
    const r = this.#records.get(kid);
    return r && cloneRecord(r);
  }

  async list(role?: KeyRole): Promise<KeyRecord[]> {
    return [...this.#records.values()]
      .filter((r) => role === undefined || r.role === role)
      .sort(byCreation)
      .map(cloneRecord);
  }

  async rotate(
    kid: string,
    newPublicKey: Uint8Array,
    now: number,
    opts?: RotateOptions,
  ): Promise<KeyRecord> {
    const old = this.#require(kid);
    const [retired, next] = rotation(old, newPublicKey, now, opts);
    if (this.#records.has(next.kid))
      throw new KeyRegistryError("exists", `key ${next.kid} already registered`);
    this.#records.set(retired.kid, retired);
    this.#records.set(next.kid, next);
    return cloneRecord(next);
  }

  async revoke(kid: string, now: number, opts?: RevokeOptions): Promise<KeyRecord> {
    const r = revocation(this.#require(kid), now, opts);
    this.#records.set(kid, r);
    return cloneRecord(r);
  }

  #require(kid: string): KeyRecord {
    const r = this.#records.get(kid);
    if (!r) throw new KeyRegistryError("not_found", `unknown key ${kid}`);
    return r;
  }
}

/**
 * The audit trail's key lookup over a registry: the key that had `kid`, and whether it was valid
 * at `timestamp` (the trusted time the log recorded, never one a signer claims).
 */
export function keyValidityResolver(registry: KeyRegistry) {
  return async (kid: string, timestamp: string) => {
    const r = await registry.get(kid);
    return r ? { publicKey: r.publicKey, validAt: validAt(r, Date.parse(timestamp)) } : undefined;
  };
}
