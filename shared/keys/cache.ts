// A read-through cache in front of a KeyRegistry: every authenticated request looks its key up, and
// a store round trip plus the record's MAC check was a tenth of a request's CPU on Node.
//
// Freshness: this process's own register/rotate/revoke drop the entry at once and announce the kid
// on an InvalidationBus, so other processes drop it within a message's latency; entries also expire
// after ttlMs, which bounds how long a revocation made elsewhere can go unseen if a message is lost
// (a bus that reconnects calls onReset, which empties the cache). Only found records are cached:
// a key registered elsewhere is usable at once. Validity windows are still checked per request
// against the cached record, so time-based expiry is exact.
import { LRUCache } from "lru-cache";
import type { InvalidationBus } from "../invalidation";
import type { RegisterKeyInput } from "./record";
import {
  cloneRecord,
  type KeyRecord,
  type KeyRole,
  type RevokeOptions,
  type RotateOptions,
} from "./record";
import type { KeyRegistry } from "./registry";

export type { InvalidationBus };

export interface KeyCacheOptions {
  ttlMs: number;
  max?: number;
  bus?: InvalidationBus;
}

export class CachingKeyRegistry implements KeyRegistry {
  readonly #inner: KeyRegistry;
  readonly #cache: LRUCache<string, KeyRecord> | undefined;
  readonly #bus: InvalidationBus | undefined;
  // Bumped by every invalidation: a lookup that started before one must not store what it read.
  #epoch = 0;

  constructor(inner: KeyRegistry, opts: KeyCacheOptions) {
    this.#inner = inner;
    this.#bus = opts.bus;
    this.#cache =
      opts.ttlMs > 0
        ? new LRUCache<string, KeyRecord>({ max: opts.max ?? 10_000, ttl: opts.ttlMs })
        : undefined;
    opts.bus?.subscribe(
      (kid) => this.#drop(kid),
      () => this.#dropAll(),
    );
  }

  #drop(kid: string): void {
    this.#epoch++;
    this.#cache?.delete(kid);
  }

  #dropAll(): void {
    this.#epoch++;
    this.#cache?.clear();
  }

  async #changed(...kids: string[]): Promise<void> {
    for (const k of kids) this.#drop(k);
    // Best effort: the change is stored; a lost announcement is bounded by ttlMs elsewhere.
    await Promise.all(kids.map((k) => this.#bus?.publish(k).catch(() => undefined)));
  }

  async get(kid: string): Promise<KeyRecord | undefined> {
    const hit = this.#cache?.get(kid);
    if (hit) return cloneRecord(hit);
    const epoch = this.#epoch;
    const r = await this.#inner.get(kid);
    if (r && this.#cache && epoch === this.#epoch) this.#cache.set(kid, cloneRecord(r));
    return r;
  }

  list(role?: KeyRole): Promise<KeyRecord[]> {
    return this.#inner.list(role);
  }

  async register(input: RegisterKeyInput): Promise<KeyRecord> {
    const r = await this.#inner.register(input);
    await this.#changed(r.kid);
    return r;
  }

  rotate(
    kid: string,
    newPublicKey: Uint8Array,
    now: number,
    opts?: RotateOptions,
  ): Promise<KeyRecord> {
    return this.#write(kid, this.#inner.rotate(kid, newPublicKey, now, opts), (r) => r.kid);
  }

  revoke(kid: string, now: number, opts?: RevokeOptions): Promise<KeyRecord> {
    return this.#write(kid, this.#inner.revoke(kid, now, opts));
  }

  /** A change to `kid` (and the key it produced): dropped even on failure, whose outcome may be
   * unknown (a lost reply). */
  async #write(
    kid: string,
    op: Promise<KeyRecord>,
    produced?: (r: KeyRecord) => string,
  ): Promise<KeyRecord> {
    try {
      const r = await op;
      await this.#changed(kid, ...(produced ? [produced(r)] : []));
      return r;
    } catch (e) {
      await this.#changed(kid);
      throw e;
    }
  }
}
