// Serves the store's revision from memory between changes. The engine asks for it before every
// evaluation (to see other nodes' writes), which was a store round trip per decision. Writes
// through this node invalidate at once and are announced on the InvalidationBus; another node's
// write is seen when its announcement arrives, or at the latest ttlMs later if it was lost.
import type { InvalidationBus } from "../invalidation";
import type { NewVersion, PolicySnapshot, PolicyStorePort } from "./store";

export interface RevisionCacheOptions {
  ttlMs: number;
  bus?: InvalidationBus;
  now?: () => number;
}

const ANNOUNCEMENT = "policies";

export class RevisionCachingStore implements PolicyStorePort {
  readonly #inner: PolicyStorePort;
  readonly #opts: RevisionCacheOptions;
  #revision: number | undefined;
  #readAt = 0;
  // Bumped by every invalidation: a read that started before one must not be kept.
  #epoch = 0;

  constructor(inner: PolicyStorePort, opts: RevisionCacheOptions) {
    this.#inner = inner;
    this.#opts = opts;
    opts.bus?.subscribe(
      () => this.#invalidate(),
      () => this.#invalidate(),
    );
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  #invalidate(): void {
    this.#epoch++;
    this.#revision = undefined;
  }

  #keep(epoch: number, at: number, revision: number): void {
    if (epoch !== this.#epoch || this.#opts.ttlMs <= 0) return;
    this.#revision = revision;
    this.#readAt = at;
  }

  async #changed<T>(op: Promise<T>): Promise<T> {
    try {
      return await op;
    } finally {
      // Also on failure: the outcome of a write whose reply was lost is unknown.
      this.#invalidate();
      await this.#opts.bus?.publish(ANNOUNCEMENT).catch(() => undefined);
    }
  }

  async revision(): Promise<number> {
    const at = this.#now();
    if (this.#revision !== undefined && at - this.#readAt < this.#opts.ttlMs) return this.#revision;
    const epoch = this.#epoch;
    const r = await this.#inner.revision();
    this.#keep(epoch, at, r);
    return r;
  }

  async snapshot(): Promise<PolicySnapshot> {
    const at = this.#now();
    const epoch = this.#epoch;
    const s = await this.#inner.snapshot();
    this.#keep(epoch, at, s.revision);
    return s;
  }

  put(name: string, v: NewVersion): Promise<number> {
    return this.#changed(this.#inner.put(name, v));
  }

  setCurrent(name: string, version: number): Promise<boolean> {
    return this.#changed(this.#inner.setCurrent(name, version));
  }

  delete(name: string): Promise<boolean> {
    return this.#changed(this.#inner.delete(name));
  }

  get: PolicyStorePort["get"] = (name, version) => this.#inner.get(name, version);
  versions: PolicyStorePort["versions"] = (name) => this.#inner.versions(name);
}
