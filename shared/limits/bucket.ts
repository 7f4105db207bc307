// Token buckets, as pure functions: every RateLimiter adapter (memory, Durable Object) applies
// exactly these rules to the state it keeps, and the Redis adapter's Lua mirrors them; the contract
// suite (test/contract/limits.test.ts) holds all three to the same behaviour.

/** A bucket refills `rate` tokens per second up to `burst`; a request takes `cost` tokens. */
export interface BucketRule {
  /** Tokens per second, > 0. */
  rate: number;
  /** Capacity: the most tokens a bucket holds (an idle caller's allowance at once), >= 1. */
  burst: number;
}

export interface BucketState {
  tokens: number;
  /** When `tokens` was computed (epoch ms). */
  at: number;
}

/** One bucket a request draws on. */
export interface BucketSpec extends BucketRule {
  key: string;
}

export interface TakeResult {
  allowed: boolean;
  /** How long until the same request could pass (0 when allowed). */
  retryAfterMs: number;
  /** The key of the bucket that refused (the one that needs longest), when refused. */
  limitedBy?: string;
}

/** Throws RangeError unless the rule and cost are usable: every adapter refuses the same inputs. */
export function checkTake(buckets: readonly BucketSpec[], cost: number): void {
  if (buckets.length === 0 || buckets.length > 8) throw new RangeError("take 1 to 8 buckets");
  if (!Number.isSafeInteger(cost) || cost < 1) throw new RangeError("cost must be an integer >= 1");
  const keys = new Set<string>();
  for (const b of buckets) {
    if (typeof b.key !== "string" || b.key.length === 0 || b.key.length > 1024)
      throw new RangeError("bucket key must be 1 to 1024 characters");
    if (keys.has(b.key)) throw new RangeError(`bucket ${b.key} named twice`);
    keys.add(b.key);
    if (!(b.rate > 0) || !Number.isFinite(b.rate)) throw new RangeError("rate must be > 0");
    if (!Number.isSafeInteger(b.burst) || b.burst < 1)
      throw new RangeError("burst must be an integer >= 1");
    // A request larger than a bucket can ever hold would wait forever: the caller must refuse it
    // itself (with a message saying so) rather than ask.
    if (cost > b.burst) throw new RangeError(`cost ${cost} exceeds the burst of ${b.key}`);
  }
}

/** Tokens in a bucket at `now`: an unknown bucket is full; a clock going back adds nothing. */
export function level(state: BucketState | undefined, rule: BucketRule, now: number): number {
  if (!state) return rule.burst;
  const elapsed = Math.max(0, now - state.at);
  return Math.min(rule.burst, state.tokens + (elapsed * rule.rate) / 1000);
}

/** How long until a bucket that is this full again, i.e. when its state can be forgotten. */
export const msUntilFull = (tokens: number, rule: BucketRule): number =>
  Math.ceil(((rule.burst - tokens) * 1000) / rule.rate);

/**
 * Takes `cost` from every bucket or from none. Returns the decision and, when allowed, the new
 * state of each bucket (in the order given); a refusal changes nothing.
 */
export function take(
  states: readonly (BucketState | undefined)[],
  buckets: readonly BucketSpec[],
  cost: number,
  now: number,
): TakeResult & { next?: BucketState[] } {
  const levels = buckets.map((b, i) => level(states[i], b, now));
  let wait = 0;
  let limitedBy: string | undefined;
  buckets.forEach((b, i) => {
    const missing = cost - levels[i]!;
    if (missing > 0) {
      const ms = Math.max(1, Math.ceil((missing * 1000) / b.rate));
      if (ms > wait) {
        wait = ms;
        limitedBy = b.key;
      }
    }
  });
  if (limitedBy !== undefined) return { allowed: false, retryAfterMs: wait, limitedBy };
  return {
    allowed: true,
    retryAfterMs: 0,
    next: levels.map((tokens) => ({ tokens: tokens - cost, at: now })),
  };
}
