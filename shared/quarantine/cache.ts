// A read-through cache of "is this target quarantined?" in front of a QuarantineStore: every
// authenticated request asks it for its key and its subject, and almost every answer is "no".
//
// Freshness (docs/incidents.md "Quarantine"): a place or lift made through this process drops the
// target's entry at once and announces it on the InvalidationBus, so other processes drop it when
// the message arrives; entries, found or not, also expire after ttlMs, which bounds how long a
// quarantine placed elsewhere can go unenforced if a message is lost (a bus that reconnects calls
// onReset, which empties the cache).
import { LRUCache } from "lru-cache";
import type { InvalidationBus } from "../invalidation";
import type { QuarantineStore } from "./ports";
import { targetKey } from "./record";
import type { QuarantineRecord, QuarantineTarget } from "./types";

export interface QuarantineCacheOptions {
  ttlMs: number;
  max?: number;
  bus?: InvalidationBus;
}

/** `null`: looked up, nothing in force. */
type Entry = { record: QuarantineRecord | null };

export class CachingQuarantineStore implements QuarantineStore {
  readonly #inner: QuarantineStore;
  readonly #cache: LRUCache<string, Entry> | undefined;
  readonly #bus: InvalidationBus | undefined;
  // Bumped by every invalidation: a lookup that started before one must not store what it read.
  #epoch = 0;

  constructor(inner: QuarantineStore, opts: QuarantineCacheOptions) {
    this.#inner = inner;
    this.#bus = opts.bus;
    this.#cache =
      opts.ttlMs > 0
        ? new LRUCache<string, Entry>({ max: opts.max ?? 10_000, ttl: opts.ttlMs })
        : undefined;
    opts.bus?.subscribe(
      (key) => this.#drop(key),
      () => this.#dropAll(),
    );
  }

  #drop(key: string): void {
    this.#epoch++;
    this.#cache?.delete(key);
  }

  #dropAll(): void {
    this.#epoch++;
    this.#cache?.clear();
  }

  async #changed(t: QuarantineTarget): Promise<void> {
    const key = targetKey(t);
    this.#drop(key);
    // Best effort: the change is stored; a lost announcement is bounded by ttlMs elsewhere.
    await this.#bus?.publish(key).catch(() => undefined);
  }

  async place(record: QuarantineRecord) {
    const out = await this.#inner.place(record);
    // Announced even when another process placed it first: its announcement may still be in flight.
    await this.#changed(out.record.target);
    return out;
  }

  async lift(id: string, lift: { by: string; at: string; reason: string }) {
    const out = await this.#inner.lift(id, lift);
    if (out) await this.#changed(out.record.target);
    return out;
  }

  get(id: string) {
    return this.#inner.get(id);
  }

  async active(target: QuarantineTarget): Promise<QuarantineRecord | undefined> {
    const key = targetKey(target);
    const hit = this.#cache?.get(key);
    if (hit) return hit.record ?? undefined;
    const epoch = this.#epoch;
    const r = await this.#inner.active(target);
    if (this.#cache && epoch === this.#epoch) this.#cache.set(key, { record: r ?? null });
    return r;
  }

  list(opts: { limit: number; before?: string }) {
    return this.#inner.list(opts);
  }
}
