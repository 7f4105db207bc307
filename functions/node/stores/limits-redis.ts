// Redis RateLimiter: one Lua script reads, decides and writes every bucket of a take, so the
// buckets hold across every API process. It applies shared/limits/bucket.ts's rules (the contract
// suite checks they agree) on Redis's own clock (TIME), so processes with skewed clocks still
// share one notion of "now". A bucket's hash expires when it would be full again: idle callers
// cost no memory.
import type { Redis } from "ioredis";
import { sha256Hex } from "../../../shared/encoding";
import {
  type BucketSpec,
  checkTake,
  type RateLimiter,
  type TakeResult,
} from "../../../shared/limits";

// KEYS: the buckets. ARGV: cost, then rate and burst of each bucket. → {allowed, waitMs, index}.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local levels = {}
local wait, limited = 0, 0
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local s = redis.call('HMGET', KEYS[i], 't', 'at')
  local tokens = burst
  if s[1] and s[2] then
    local elapsed = math.max(0, now - tonumber(s[2]))
    tokens = math.min(burst, tonumber(s[1]) + elapsed * rate / 1000)
  end
  levels[i] = tokens
  if cost > tokens then
    local ms = math.max(1, math.ceil((cost - tokens) * 1000 / rate))
    if ms > wait then wait, limited = ms, i end
  end
end
if limited > 0 then return {0, wait, limited} end
for i = 1, #KEYS do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local left = levels[i] - cost
  redis.call('HSET', KEYS[i], 't', string.format('%.17g', left), 'at', string.format('%.0f', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - left) * 1000 / rate) + 1000)
end
return {1, 0, 0}`;

export class RedisRateLimiter implements RateLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** `prefix`: key namespace, e.g. "sigil:" or a per-test prefix. */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = `${prefix}limits:`;
  }

  async take(partition: string, buckets: readonly BucketSpec[], cost: number): Promise<TakeResult> {
    checkTake(buckets, cost);
    // The partition's hash as a hash tag: one cluster slot per partition, whatever its characters.
    const tag = sha256Hex(partition).slice(0, 24);
    const keys = buckets.map((b) => `${this.#prefix}{${tag}}:${encodeURIComponent(b.key)}`);
    const args = [String(cost), ...buckets.flatMap((b) => [String(b.rate), String(b.burst)])];
    const [allowed, wait, index] = (await this.#redis.eval(
      TAKE,
      keys.length,
      ...keys,
      ...args,
    )) as [number, number, number];
    if (allowed === 1) return { allowed: true, retryAfterMs: 0 };
    return { allowed: false, retryAfterMs: wait, limitedBy: buckets[index - 1]!.key };
  }
}
