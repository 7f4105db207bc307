// Redis ReplayCache: SET NX EX makes check-and-store one atomic step across every API node.
import type { Redis } from "ioredis";
import type { ReplayCache } from "../../../shared/httpsig/ports";

export interface RedisReplayCacheOptions {
  /** Key namespace, e.g. "sigil:" (default) or a per-test prefix. */
  readonly prefix?: string;
}

export class RedisReplayCache implements ReplayCache {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, opts: RedisReplayCacheOptions = {}) {
    this.#redis = redis;
    this.#prefix = `${opts.prefix ?? "sigil:"}nonce:`;
  }

  async checkAndStore(keyid: string, nonce: string, ttlSeconds: number): Promise<boolean> {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds))
      throw new RangeError("ttlSeconds must be > 0");
    const res = await this.#redis.set(
      this.keyFor(keyid, nonce),
      "1",
      "EX",
      Math.ceil(ttlSeconds),
      "NX",
    );
    return res === "OK";
  }

  /** The key a (keyid, nonce) pair is remembered under; the audit log reserves nonces here too. */
  keyFor(keyid: string, nonce: string): string {
    // encodeURIComponent escapes ":", so (keyid, nonce) pairs cannot collide.
    return `${this.#prefix}${encodeURIComponent(keyid)}:${encodeURIComponent(nonce)}`;
  }
}
