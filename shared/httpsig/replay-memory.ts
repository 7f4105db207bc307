// In-memory ReplayCache: one process only (tests, single-node dev). Bounded, and when full of
// live nonces it refuses rather than evicting one that could then be replayed.
import { LRUCache } from "lru-cache";
import type { ReplayCache } from "./ports";

export interface MemoryReplayCacheOptions {
  /** Maximum live nonces held. Default 100 000. */
  readonly maxEntries?: number;
  /** Clock in milliseconds, for tests. Default performance.now/Date.now as lru-cache picks. */
  readonly now?: () => number;
}

export class ReplayCacheFullError extends Error {
  override readonly name = "ReplayCacheFullError";
}

export class MemoryReplayCache implements ReplayCache {
  readonly #cache: LRUCache<string, true>;
  readonly #max: number;

  constructor(opts: MemoryReplayCacheOptions = {}) {
    this.#max = opts.maxEntries ?? 100_000;
    const now = opts.now;
    this.#cache = new LRUCache<string, true>({
      max: this.#max,
      ttlAutopurge: false,
      // Expiry must be exact enough that a nonce never outlives nor undershoots its window.
      ttlResolution: 0,
      ...(now ? { perf: { now } } : {}),
    });
  }

  async checkAndStore(keyid: string, nonce: string, ttlSeconds: number): Promise<boolean> {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds))
      throw new RangeError("ttlSeconds must be > 0");
    // JSON array keys: no separator can make two (keyid, nonce) pairs collide.
    const key = JSON.stringify([keyid, nonce]);
    if (this.#cache.has(key)) return false;
    if (this.#cache.size >= this.#max) {
      this.#cache.purgeStale();
      if (this.#cache.size >= this.#max) throw new ReplayCacheFullError("replay cache is full");
    }
    this.#cache.set(key, true, { ttl: Math.ceil(ttlSeconds * 1000) });
    return true;
  }

  get size(): number {
    return this.#cache.size;
  }
}
