// Fair scheduling over BullMQ OSS, which has no groups (docs/governance.md "fair scheduling"):
//
// - Round robin by priority. Every job gets a BullMQ priority (lower runs first, FIFO within one)
//   from a virtual round V, the highest priority any worker has started: a submitter's job gets
//   max(its previous job's + 1, V). So each submitter's k-th waiting job is ordered before
//   anyone's (k+1)-th, and a newcomer's job lands in the round now running: one agent's backlog
//   delays another agent's job by at most one of its jobs per worker slot. A submitter idle for a
//   while restarts at V, never in the past, so a stale backlog cannot starve anyone either.
// - Running cap. A worker takes a slot for the job's submitter before it runs the job; at the
//   submitter's cap it moves the job back to delayed (BullMQ's manual pattern) and takes the next.
// - Queued cap. At submission a submitter with `queuedJobs` unfinished jobs is refused (429).
//
// State, beside the queue's own keys and under its hash tag: V, each submitter's last priority,
// its unfinished jobs and its running jobs (sorted sets scored by when an entry stops counting,
// so a crash between two steps costs a slot only until the job could no longer be running).
// V grows by one per round; BullMQ priorities end at 2^21 - 1, so once V passes 2^20 it restarts
// at 0 the next time the queue is idle (priorities past the end are clamped to it: FIFO).
import { QueueKeys } from "bullmq";
import type { Redis } from "ioredis";

/** BullMQ's largest priority. */
const PRIORITY_LIMIT = 2 ** 21 - 1;
/** V restarts (when the queue is idle) once past this. */
const RESTART_AFTER = 2 ** 20;
/** A job's running slot outlives its timeout by this much before it stops counting. */
const LEASE_MARGIN_MS = 120_000;
const DEFERRALS_TTL_MS = 7 * 24 * 3600 * 1000;

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: unfinished set of the submitter, V, last priorities, then the queue's wait, paused,
// active, prioritized and delayed keys. ARGV: jobId, forget-at (ms), cap, submitter.
// → -1 over the cap; else the job's priority.
const ADMIT = `
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return math.max(v, 1) end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
if v > ${RESTART_AFTER} and redis.call('LLEN', KEYS[4]) + redis.call('LLEN', KEYS[5])
    + redis.call('LLEN', KEYS[6]) + redis.call('ZCARD', KEYS[7]) + redis.call('ZCARD', KEYS[8]) == 0 then
  v = 0
  redis.call('SET', KEYS[2], '0')
  redis.call('DEL', KEYS[3])
end
-- A submitter whose last priority is below V is where a newcomer is: forget it.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. v)
local last = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[4]) or '0')
local p = math.min(math.max(last + 1, v, 1), ${PRIORITY_LIMIT})
redis.call('ZADD', KEYS[3], p, ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], top[2])
return p`;

// KEYS: running set of the submitter, V, the job's deferral counter. ARGV: jobId, cap, lease ms,
// priority. → {1, deferrals} granted; {0, deferrals} at the cap (this deferral counted).
const ACQUIRE = `
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local d = redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ${DEFERRALS_TTL_MS})
  return {0, d}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], top[2])
local p = tonumber(ARGV[4])
if p > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], ARGV[4]) end
return {1, tonumber(redis.call('GET', KEYS[3]) or '0')}`;

/** Who a job counts against: its submitter's subject (all its keys together), else its key. */
export const submitterOf = (s: { kid: string; subject: string | null }): string =>
  s.subject !== null ? `s:${s.subject}` : `k:${s.kid}`;

export class FairShare {
  readonly #redis: Redis;
  readonly #base: string;
  readonly #queue: Record<string, string>;

  /** `queuePrefix` and `queueName` as BullMQ has them ("{sigil}", "sigil-jobs"). */
  constructor(redis: Redis, queuePrefix: string, queueName: string) {
    this.#redis = redis;
    this.#queue = new QueueKeys(queuePrefix).getKeys(queueName);
    this.#base = new QueueKeys(queuePrefix).toKey(queueName, "fair");
  }

  #unfinished = (submitter: string) => `${this.#base}:unfinished:${encodeURIComponent(submitter)}`;
  #running = (submitter: string) => `${this.#base}:running:${encodeURIComponent(submitter)}`;
  #deferred = (jobId: string) => `${this.#base}:deferred:${jobId}`;

  /**
   * Counts a new job against its submitter's unfinished jobs and gives it its priority; -1 when
   * the submitter already has `cap`. Idempotent per jobId. `forgetAt`: when the job can no longer
   * be unfinished (its envelope's expiry plus its timeout), should its release be lost.
   */
  async admit(jobId: string, submitter: string, cap: number, forgetAt: number): Promise<number> {
    const q = this.#queue;
    return (await this.#redis.eval(
      ADMIT,
      8,
      this.#unfinished(submitter),
      `${this.#base}:v`,
      `${this.#base}:last`,
      q.wait!,
      q.paused!,
      q.active!,
      q.prioritized!,
      q.delayed!,
      jobId,
      String(forgetAt),
      String(cap),
      submitter,
    )) as number;
  }

  /** The job finished (or was never queued): it no longer counts against its submitter. */
  async release(jobId: string, submitter: string): Promise<void> {
    await this.#redis.zrem(this.#unfinished(submitter), jobId);
  }

  /** How many unfinished jobs the submitter has. */
  async unfinished(submitter: string): Promise<number> {
    return this.#redis.zcount(this.#unfinished(submitter), `(${Date.now()}`, "+inf");
  }

  /** How many times the job was moved back for its submitter's running cap. */
  async deferrals(jobId: string): Promise<number> {
    return Number((await this.#redis.get(this.#deferred(jobId))) ?? "0");
  }

  /** Counts a move back that started nothing else (not an attempt), as acquire does at the cap. */
  async defer(jobId: string): Promise<void> {
    const k = this.#deferred(jobId);
    await this.#redis.multi().incr(k).pexpire(k, DEFERRALS_TTL_MS).exec();
  }

  /** A running slot for the job, unless its submitter has `cap` running; moves V forward. */
  async acquire(
    jobId: string,
    submitter: string,
    cap: number,
    timeoutMs: number,
    priority: number,
  ): Promise<boolean> {
    const [granted] = (await this.#redis.eval(
      ACQUIRE,
      3,
      this.#running(submitter),
      `${this.#base}:v`,
      this.#deferred(jobId),
      jobId,
      String(cap),
      String(timeoutMs + LEASE_MARGIN_MS),
      String(priority),
    )) as [number, number];
    return granted === 1;
  }

  /** The job stopped running (finished, failed or will be retried). */
  async releaseRun(jobId: string, submitter: string): Promise<void> {
    await this.#redis.zrem(this.#running(submitter), jobId);
  }

  /** The job is done for good: its deferral count is no longer needed. */
  async forget(jobId: string): Promise<void> {
    await this.#redis.del(this.#deferred(jobId));
  }
}
