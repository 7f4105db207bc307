// JobsBackend on Redis + BullMQ: the record is a hash, its feed a stream (both under the job's hash
// tag), and the queue a BullMQ Queue whose job id is the jobId (a repeated add is a no-op).
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { cancelChannel } from "../../../platform/node/cancel";
import { FairShare, submitterOf } from "../../../platform/node/fairness";
import { type QueuedJob, queuePrefix } from "../../../platform/node/queue";
import { limitsSchema } from "../../../shared/config/schema";
import { sha256Hex, utf8 } from "../../../shared/encoding";
import type {
  CancelOutcome,
  ClaimInfo,
  ClaimOutcome,
  ClaimRefusal,
  FinishOutcome,
  JobEvent,
  JobEventType,
  JobListQuery,
  JobPage,
  JobRecord,
  JobsBackend,
  ReleaseOutcome,
  ResultClaim,
  StartInfo,
  StartOutcome,
  StoredResult,
} from "../../../shared/jobs/backend";
import type { SignedEnvelope } from "../../../shared/jobs/envelope";
import { isTerminal, type JobStatus } from "../../../shared/jobs/result";
import { LimitExceededError } from "../../../shared/limits";
import { CANCEL, CLAIM, CREATE, FINISH, HOLD, REJECT, RELEASE, START } from "./scripts";

export interface RedisJobsOptions {
  /** Commands (not blocking); shared is fine. */
  redis: Redis;
  /** Key namespace, config.redis.prefix ("sigil"). BullMQ keys go under "{<prefix>}". */
  prefix: string;
  /** config.sandbox.queue */
  queueName: string;
  /** How long a record and its feed are kept after the last change. Default 7 days. */
  retentionMs?: number;
  /** Most concurrent blocking waits (SSE, long-poll) before new ones get 503. Default 512. */
  maxWaiters?: number;
  /** Bytes of stdout/stderr per `output` event. Default 16 KiB. */
  outputChunkBytes?: number;
  /** Unfinished jobs per submitter when an envelope carries no quota ([limits] queued_jobs). */
  queuedJobs?: number;
}

export class WaitersExhaustedError extends Error {
  override readonly name = "WaitersExhaustedError";
}

const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/;
const MAX_EVENTS = "10000";
/** Index entries one page of a listing reads at most (status filters skip entries). */
const MAX_LIST_SCAN = 500;
/** An index member: `<createdAt ISO>|<jobId>`, so lexical order is time order. */
const CURSOR = /^[0-9TZ:.+-]{1,40}\|[A-Za-z0-9_-]{1,128}$/;
/** Blocking connections kept open for reuse by waits (SSE, long-poll). */
const IDLE_BLOCKING_CONNECTIONS = 16;

/** BullMQ defaults for sandbox jobs: retries with backoff for infrastructure errors; completed
 * jobs kept by age/count (removeOnComplete: true races waitUntilFinished). */
export const jobQueueOptions = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
} as const;

type BaseFields = Pick<
  JobRecord,
  | "jobId"
  | "tier"
  | "image"
  | "riskScore"
  | "submitterKid"
  | "subject"
  | "envelopeHash"
  | "policyDecisionId"
  | "createdAt"
  | "expiresAt"
>;

export class RedisJobsBackend implements JobsBackend {
  readonly queue: Queue<QueuedJob>;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #retentionMs: number;
  readonly #maxWaiters: number;
  readonly #chunk: number;
  readonly #fair: FairShare;
  readonly #queuedJobs: number;
  #waiters = 0;
  readonly #idle: Redis[] = [];
  #closed = false;

  constructor(opts: RedisJobsOptions) {
    this.#redis = opts.redis;
    this.#prefix = opts.prefix;
    this.#retentionMs = opts.retentionMs ?? 7 * 24 * 3600 * 1000;
    this.#maxWaiters = opts.maxWaiters ?? 512;
    this.#chunk = opts.outputChunkBytes ?? 16 * 1024;
    this.#fair = new FairShare(opts.redis, queuePrefix(opts.prefix), opts.queueName);
    this.#queuedJobs = opts.queuedJobs ?? limitsSchema.parse({}).queued_jobs;
    this.queue = new Queue<QueuedJob>(opts.queueName, {
      connection: opts.redis,
      prefix: queuePrefix(opts.prefix),
      defaultJobOptions: jobQueueOptions,
    });
  }

  #keys(jobId: string): [string, string] {
    if (!JOB_ID.test(jobId)) throw new RangeError("invalid job id");
    const rec = `${this.#prefix}:job:{${jobId}}`;
    return [rec, `${rec}:ev`];
  }

  /**
   * Held and released-but-unconfirmed jobs (jobId → when held): what the sweep of held jobs
   * (held-sweep.ts) visits, so a release survives any process dying between its steps.
   */
  get heldKey(): string {
    return `${this.#prefix}:jobs:held`;
  }

  async submit(signed: SignedEnvelope, envelopeHash: string): Promise<JobRecord> {
    const e = signed.envelope;
    const [rec, ev] = this.#keys(e.jobId);
    const base = baseFields(signed, envelopeHash);
    const queued = JSON.stringify({ jobId: e.jobId, tier: e.tier, riskScore: e.riskScore });
    const priority = await this.#admit(signed);
    try {
      await this.#redis.eval(
        CREATE,
        2,
        rec,
        ev,
        JSON.stringify(base),
        new Date().toISOString(),
        queued,
        String(this.#retentionMs),
        MAX_EVENTS,
      );
      await this.#index(base);
      // Record first, then queue: a worker never sees a job without a record. A failed add leaves
      // a queued record that a retried submit (same jobId) completes; the add is idempotent.
      await this.queue.add("run", { envelope: signed }, { jobId: e.jobId, priority });
    } catch (err) {
      await this.#fair.release(e.jobId, submitterOf(e.submitter)).catch(() => undefined);
      throw err;
    }
    const r = await this.get(e.jobId);
    if (!r) throw new Error("job record vanished after create");
    return r;
  }

  async hold(signed: SignedEnvelope, envelopeHash: string, approvalId: string): Promise<JobRecord> {
    const e = signed.envelope;
    const [rec, ev] = this.#keys(e.jobId);
    const base = baseFields(signed, envelopeHash);
    // A held job is unfinished: it counts against its submitter's queued cap from now on.
    const priority = await this.#admit(signed);
    try {
      // Into the sweep's set before the record exists: a crash in between leaves an id the sweep
      // drops (no record), never a held record the sweep does not know of.
      await this.#redis.zadd(this.heldKey, String(Date.now()), e.jobId);
      await this.#redis.eval(
        HOLD,
        2,
        rec,
        ev,
        JSON.stringify(base),
        new Date().toISOString(),
        JSON.stringify({ jobId: e.jobId, approvalId }),
        String(this.#retentionMs),
        MAX_EVENTS,
        JSON.stringify(signed),
        approvalId,
        String(priority),
      );
      await this.#index(base);
    } catch (err) {
      await this.#fair.release(e.jobId, submitterOf(e.submitter)).catch(() => undefined);
      throw err;
    }
    const r = await this.get(e.jobId);
    if (!r) throw new Error("job record vanished after create");
    return r;
  }

  async release(jobId: string): Promise<ReleaseOutcome> {
    const [rec, ev] = this.#keys(jobId);
    const h = await this.#redis.hmget(rec, "envelope", "priority", "approvalId", "base");
    const base = h[3] ? (JSON.parse(h[3]) as BaseFields) : undefined;
    // Into the sweep's set before the compare-and-set: a process dying after it and before the
    // queue add leaves the job for the sweep to add (held-sweep.ts).
    if (h[3]) await this.#redis.zadd(this.heldKey, "NX", String(Date.now()), jobId);
    const out = (await this.#redis.eval(
      RELEASE,
      2,
      rec,
      ev,
      new Date().toISOString(),
      JSON.stringify({
        jobId,
        tier: base?.tier ?? null,
        riskScore: base?.riskScore ?? null,
        approvalId: h[2] ?? null,
      }),
      MAX_EVENTS,
    )) as string;
    if (out === "missing") {
      await this.#redis.zrem(this.heldKey, jobId);
      return { outcome: "missing" };
    }
    if ((out === "released" || out === "requeued") && h[0]) {
      const signed = JSON.parse(h[0]) as SignedEnvelope;
      // The queue's job id is the jobId: of any number of releases, one add lands.
      await this.queue.add("run", { envelope: signed }, { jobId, priority: Number(h[1] ?? "0") });
    }
    // Queued for sure (or not held at all): nothing left for the sweep.
    await this.#redis.zrem(this.heldKey, jobId);
    const record = await this.get(jobId);
    if (!record) return { outcome: "missing" };
    return {
      outcome: out === "released" || out === "requeued" ? out : "unchanged",
      record,
    };
  }

  async reject(jobId: string, reason: string): Promise<ReleaseOutcome> {
    const [rec, ev] = this.#keys(jobId);
    const out = (await this.#redis.eval(
      REJECT,
      2,
      rec,
      ev,
      new Date().toISOString(),
      reason,
      JSON.stringify({ status: "rejected", reason }),
      String(this.#retentionMs),
      MAX_EVENTS,
    )) as string;
    const record = await this.get(jobId);
    if (out === "rejected" && record)
      await this.#fair.release(
        jobId,
        submitterOf({ kid: record.submitterKid, subject: record.subject }),
      );
    if (record?.status !== "awaiting_approval") await this.#redis.zrem(this.heldKey, jobId);
    if (!record) return { outcome: "missing" };
    return { outcome: out === "rejected" ? "rejected" : "unchanged", record };
  }

  /** The listing indexes (all jobs; its subject's or its key's), each member `createdAt|jobId`. */
  #indexKeys(scope: JobListQuery["scope"]): string {
    if (scope === "all") return `${this.#prefix}:jobs:idx`;
    if ("subject" in scope) return `${this.#prefix}:jobs:idx:s:${scope.subject}`;
    return `${this.#prefix}:jobs:idx:k:${scope.kid}`;
  }

  /** Adds a job to the indexes and drops entries older than the records' retention. */
  async #index(base: BaseFields): Promise<void> {
    const member = `${base.createdAt}|${base.jobId}`;
    const cutoff = `(${new Date(Date.now() - this.#retentionMs).toISOString()}`;
    const keys = [this.#indexKeys("all"), this.#indexKeys({ kid: base.submitterKid })];
    if (base.subject !== null) keys.push(this.#indexKeys({ subject: base.subject }));
    const m = this.#redis.multi();
    for (const k of keys) {
      m.zadd(k, "0", member);
      m.zremrangebylex(k, "-", cutoff);
      m.pexpire(k, this.#retentionMs);
    }
    await m.exec();
  }

  async list(q: JobListQuery): Promise<JobPage> {
    const limit = Math.max(1, Math.min(100, q.limit));
    if (q.cursor !== undefined && !CURSOR.test(q.cursor)) throw new RangeError("invalid cursor");
    const key = this.#indexKeys(q.scope);
    const jobs: JobRecord[] = [];
    let from = q.cursor === undefined ? "+" : `(${q.cursor}`;
    let scanned = 0;
    while (jobs.length < limit && scanned < MAX_LIST_SCAN) {
      const batch = Math.min(MAX_LIST_SCAN - scanned, Math.max(limit * 2, 20));
      const members = await this.#redis.zrevrangebylex(key, from, "-", "LIMIT", 0, batch);
      if (members.length === 0) return { jobs };
      const p = this.#redis.pipeline();
      for (const m of members) p.hgetall(this.#keys(m.slice(m.indexOf("|") + 1))[0]);
      const rows = (await p.exec()) ?? [];
      for (let i = 0; i < members.length; i++) {
        scanned++;
        from = `(${members[i]}`;
        const h = rows[i]?.[1] as Record<string, string> | undefined;
        if (!h?.base) continue;
        const r = toRecord(h);
        if (q.status !== undefined && r.status !== q.status) continue;
        jobs.push(r);
        if (jobs.length === limit) break;
      }
      if (members.length < batch && jobs.length < limit) return { jobs };
    }
    // More may follow: the page ends at the last entry read (bounded work per request).
    return { jobs, cursor: from.slice(1) };
  }

  async cancel(jobId: string, reason: string): Promise<CancelOutcome> {
    const [rec, ev] = this.#keys(jobId);
    const out = (await this.#redis.eval(
      CANCEL,
      2,
      rec,
      ev,
      new Date().toISOString(),
      reason,
      JSON.stringify({ status: "killed", reason }),
      String(this.#retentionMs),
      MAX_EVENTS,
      cancelChannel(this.#prefix),
      jobId,
    )) as string;
    if (out === "missing") return { outcome: "missing" };
    const record = await this.get(jobId);
    if (!record) return { outcome: "missing" };
    if (out === "cancelled") {
      // Out of the queue (best effort: a worker that took it meanwhile finds it finished) and no
      // longer counted against its submitter.
      await this.queue.remove(jobId).catch(() => undefined);
      await this.#redis.zrem(this.heldKey, jobId);
      await this.#fair.release(
        jobId,
        submitterOf({ kid: record.submitterKid, subject: record.subject }),
      );
    }
    return { outcome: out as "cancelled" | "killing" | "finished", record };
  }

  async requeue(jobId: string): Promise<boolean> {
    this.#keys(jobId);
    const job = await this.queue.getJob(jobId);
    if (!job || !(await job.isActive())) return false;
    // The worker's lock token is what moves an active job; taking it here is the point: the
    // quarantined worker can no longer complete or extend the job, and the queue hands it to the
    // next worker now, not after stall detection.
    const token = await this.#redis.get(`${this.queue.toKey(jobId)}:lock`);
    if (token === null) return false;
    await job.moveToWait(token);
    return true;
  }

  /** Up to `limit` ids of held or released-but-unconfirmed jobs, oldest first. */
  held(limit = 1000): Promise<string[]> {
    return this.#redis.zrange(this.heldKey, "0", String(limit - 1));
  }

  /**
   * Fair share (fairness.ts): counts the job against its submitter's unfinished jobs, or throws
   * when they are at the cap, and gives it its place in the round robin. A job can be unfinished
   * until its envelope expires plus one run.
   */
  async #admit(signed: SignedEnvelope): Promise<number> {
    const e = signed.envelope;
    const cap = e.quota?.queuedJobs ?? this.#queuedJobs;
    const forgetAt = Date.parse(e.expiresAt) + e.spec.timeoutMs + 60_000;
    const priority = await this.#fair.admit(e.jobId, submitterOf(e.submitter), cap, forgetAt);
    if (priority < 0)
      throw new LimitExceededError(
        "queued_jobs",
        2000,
        `${e.submitter.subject ?? e.submitter.kid} already has ${cap} unfinished jobs`,
      );
    return priority;
  }

  /** How many unfinished jobs a submitter has (a cheap check before the policy and audit work). */
  pending(submitter: { kid: string; subject: string | null }): Promise<number> {
    return this.#fair.unfinished(submitterOf(submitter));
  }

  async get(jobId: string): Promise<JobRecord | null> {
    if (!JOB_ID.test(jobId)) return null;
    const [rec] = this.#keys(jobId);
    const h = await this.#redis.hgetall(rec);
    if (!h.base) return null;
    return toRecord(h);
  }

  async claim(jobId: string, info: ClaimInfo): Promise<ClaimOutcome> {
    const [rec] = this.#keys(jobId);
    const out = (await this.#redis.eval(
      CLAIM,
      1,
      rec,
      String(info.attempt),
      info.workerKid,
      (await this.#holdsLock(jobId, info.attempt, info.lockHash)) ? "1" : "0",
    )) as string;
    if (out === "missing") return { outcome: "missing" };
    const record = await this.get(jobId);
    if (!record) return { outcome: "missing" };
    const refusal = refusalOf(out);
    if (refusal) return { outcome: "refused", reason: refusal, record };
    return { outcome: out as "claimed" | "duplicate" | "finished", record };
  }

  /**
   * Whether the caller holds the BullMQ lock of the job's current attempt. The queue sets the
   * lock (a per-fetch token of the worker that moved the job to active) only for that worker,
   * and the worker sends sha256 of it, never the token itself (the token completes the job).
   * Read before the claim script, not in it: the queue's keys hash to another cluster slot.
   */
  async #holdsLock(jobId: string, attempt: number, lockHash: string): Promise<boolean> {
    const jobKey = this.queue.toKey(jobId);
    const [lock, ats, deferrals] = await Promise.all([
      this.#redis.get(`${jobKey}:lock`),
      this.#redis.hget(jobKey, "ats"),
      this.#fair.deferrals(jobId),
    ]);
    // Moves back to delayed for a submitter's running cap start a queue attempt without running
    // the job; the worker does not count them, so neither does this check (fairness.ts).
    return (
      lock !== null && Number(ats) - deferrals === attempt && sha256Hex(utf8(lock)) === lockHash
    );
  }

  async markStarted(jobId: string, info: StartInfo): Promise<StartOutcome> {
    const [rec, ev] = this.#keys(jobId);
    const data = JSON.stringify({ attempt: info.attempt, workerId: info.workerId, at: info.at });
    const out = (await this.#redis.eval(
      START,
      2,
      rec,
      ev,
      String(info.attempt),
      info.workerId,
      info.workerKid,
      info.at,
      data,
      MAX_EVENTS,
    )) as string;
    if (out === "missing") return { outcome: "missing" };
    const record = await this.get(jobId);
    if (!record) return { outcome: "missing" };
    const refusal = refusalOf(out);
    if (refusal) return { outcome: "refused", reason: refusal, record };
    // Cancelled while its worker was lost: it ended at this start, no longer counts as unfinished.
    if (out === "finished" && record.status === "killed" && record.result === null)
      await this.#fair.release(
        jobId,
        submitterOf({ kid: record.submitterKid, subject: record.subject }),
      );
    return { outcome: out as "started" | "duplicate" | "finished", record };
  }

  async finish(jobId: string, r: StoredResult, claim: ResultClaim): Promise<FinishOutcome> {
    const events: string[] = [];
    for (const [stream, text] of [
      ["stdout", r.stdout],
      ["stderr", r.stderr],
    ] as const) {
      for (let i = 0; i < text.length; i += this.#chunk) {
        events.push("output", JSON.stringify({ stream, data: text.slice(i, i + this.#chunk) }));
      }
    }
    events.push("finished", JSON.stringify(finishedData(r)));
    return this.#finish(
      jobId,
      [
        r.resultHash,
        r.result.status,
        JSON.stringify(r),
        r.result.finishedAt,
        r.result.reason ?? "",
      ],
      [String(claim.attempt), claim.workerKid],
      events,
    );
  }

  async fail(jobId: string, status: "error" | "rejected", reason: string): Promise<FinishOutcome> {
    const at = new Date().toISOString();
    // A system failure (the queue gave up): no worker claim to check.
    return this.#finish(
      jobId,
      ["", status, "", at, reason],
      ["", ""],
      ["finished", JSON.stringify({ status, reason })],
    );
  }

  async #finish(
    jobId: string,
    [hash, status, json, at, reason]: [string, string, string, string, string],
    [attempt, workerKid]: [string, string],
    events: string[],
  ): Promise<FinishOutcome> {
    const [rec, ev] = this.#keys(jobId);
    const out = (await this.#redis.eval(
      FINISH,
      2,
      rec,
      ev,
      hash,
      status,
      json,
      at,
      reason,
      String(this.#retentionMs),
      MAX_EVENTS,
      attempt,
      workerKid,
      ...events,
    )) as string;
    if (out === "missing") return { outcome: "missing" };
    const record = await this.get(jobId);
    if (!record) return { outcome: "missing" };
    const refusal = refusalOf(out);
    if (refusal) return { outcome: "refused", reason: refusal, record };
    // Finished: no longer counts against its submitter's unfinished jobs.
    if (out === "stored")
      await this.#fair.release(
        jobId,
        submitterOf({ kid: record.submitterKid, subject: record.subject }),
      );
    return { outcome: out as "stored" | "duplicate" | "conflict", record };
  }

  async events(
    jobId: string,
    after: string | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<JobEvent[]> {
    const [, ev] = this.#keys(jobId);
    const from = after === undefined ? "-" : `(${after}`;
    if (after !== undefined && !/^\d+-\d+$/.test(after)) throw new RangeError("invalid event id");
    const now = await this.#redis.xrange(ev, from, "+", "COUNT", 1000);
    if (now.length > 0 || timeoutMs <= 0) return now.map(toEvent);
    return this.#block(ev, after ?? "0-0", timeoutMs, signal);
  }

  /** XREAD BLOCK on its own connection (a blocked connection serves nobody else). */
  async #block(
    stream: string,
    after: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<JobEvent[]> {
    if (signal?.aborted) return [];
    if (this.#waiters >= this.#maxWaiters)
      throw new WaitersExhaustedError("too many concurrent waits");
    this.#waiters++;
    // Reuse an idle blocking connection: a fresh one costs a connect and a ready check, and a
    // wait() blocks once per event of the job.
    const conn =
      this.#idle.pop() ?? this.#redis.duplicate({ maxRetriesPerRequest: 1, lazyConnect: false });
    let reusable = true;
    const onAbort = () => {
      reusable = false;
      conn.disconnect();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const res = (await conn.xread(
        "COUNT",
        1000,
        "BLOCK",
        Math.max(1, Math.ceil(timeoutMs)),
        "STREAMS",
        stream,
        after,
      )) as [string, [string, string[]][]][] | null;
      return res?.[0]?.[1].map(toEvent) ?? [];
    } catch (e) {
      reusable = false;
      if (signal?.aborted) return [];
      throw e;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#waiters--;
      // Only a connection whose BLOCK finished normally is back in a known state.
      if (reusable && !this.#closed && this.#idle.length < IDLE_BLOCKING_CONNECTIONS)
        this.#idle.push(conn);
      else conn.disconnect();
    }
  }

  async wait(jobId: string, timeoutMs: number, signal?: AbortSignal): Promise<JobRecord | null> {
    const [, ev] = this.#keys(jobId);
    const deadline = Date.now() + timeoutMs;
    // Read the feed position before the record: a finish after this point shows up in XREAD.
    let last = (await this.#redis.xrevrange(ev, "+", "-", "COUNT", 1))[0]?.[0] ?? "0-0";
    let record = await this.get(jobId);
    while (record && !isTerminal(record.status) && !signal?.aborted) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const events = await this.#block(ev, last, left, signal);
      if (events.length === 0) break;
      last = events[events.length - 1]!.id;
      if (events.some((e) => e.type === "finished")) record = await this.get(jobId);
    }
    return record;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#idle.splice(0)) c.disconnect();
    await this.queue.close();
  }
}

function baseFields(signed: SignedEnvelope, envelopeHash: string): BaseFields {
  const e = signed.envelope;
  return {
    jobId: e.jobId,
    tier: e.tier,
    image: e.image,
    riskScore: e.riskScore,
    submitterKid: e.submitter.kid,
    subject: e.submitter.subject,
    envelopeHash,
    policyDecisionId: e.policyDecisionId,
    createdAt: e.createdAt,
    expiresAt: e.expiresAt,
  };
}

function finishedData(r: StoredResult): Record<string, unknown> {
  return {
    status: r.result.status,
    exitCode: r.result.exitCode,
    signal: r.result.signal,
    truncated: r.result.truncated,
    durationMs: r.result.durationMs,
    resultHash: r.resultHash,
    workerId: r.result.workerId,
  };
}

function toEvent([id, fields]: [string, string[]]): JobEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(f.data ?? "{}") as Record<string, unknown>;
  } catch {
    data = {};
  }
  return { id, type: (f.type ?? "output") as JobEventType, data };
}

const REFUSALS: readonly ClaimRefusal[] = ["no-lock", "claimed-by-other", "not-claimant"];

/** The scripts answer `refused:<why>`. */
function refusalOf(out: string): ClaimRefusal | undefined {
  if (!out.startsWith("refused:")) return undefined;
  const why = out.slice("refused:".length) as ClaimRefusal;
  return REFUSALS.includes(why) ? why : "not-claimant";
}

function toRecord(h: Record<string, string>): JobRecord {
  const base = JSON.parse(h.base!) as BaseFields;
  const claims: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (k.startsWith("claim:")) claims[k.slice(6)] = v;
  return {
    ...base,
    status: (h.status ?? "queued") as JobStatus,
    updatedAt: h.updatedAt ?? base.createdAt,
    startedAt: h.startedAt ?? null,
    finishedAt: h.finishedAt ?? null,
    attempts: Number(h.attempts ?? "0"),
    workerId: h.workerId ?? null,
    workerKid: h.workerKid ?? null,
    reason: h.reason ?? null,
    result: h.result ? (JSON.parse(h.result) as StoredResult) : null,
    approvalId: h.approvalId ?? null,
    claims,
  };
}
