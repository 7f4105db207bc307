// The job consumer: verify the envelope before anything, record the start with the API, run in the
// sandbox, sign the result, persist it, report it. Retries re-send the signed result, never re-run;
// a re-run after a crash happens only as a new, recorded attempt (BullMQ attemptsStarted).
import { context } from "@opentelemetry/api";
import { DelayedError, type Job, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { cancelChannel, jobRecordKey } from "../../platform/node/cancel";
import { FairShare, submitterOf } from "../../platform/node/fairness";
import type { UntrustedQueuedJob } from "../../platform/node/queue";
import { limitsSchema } from "../../shared/config/schema";
import type { Signer } from "../../shared/crypto";
import { canonicalJson, clip, sha256Hex, utf8 } from "../../shared/encoding";
import { MAX_REPORTED_LOG } from "../../shared/jobs/egress";
import { type EnvelopeVerifyOptions, verifyEnvelope } from "../../shared/jobs/envelope";
import {
  outputHash,
  type ResultBody,
  signResult,
  type TerminalStatus,
} from "../../shared/jobs/result";
import type { Logger } from "../../shared/log";
import { type Context, contextFromTraceparent, inSpan, pastSpan } from "../../shared/tracing";
import { errorResult } from "../sandbox/types";
import { type SandboxDriver, type SandboxRunResult, sandboxRunSpec } from "./driver";
import type { WorkerMetrics } from "./metrics";
import type { Outbox, PendingReport, ResultReport } from "./outbox";

export interface StartedReport {
  type: "started";
  attempt: number;
  workerId: string;
  envelopeHash: string;
  /** sha256 (hex) of this attempt's queue lock token: the claim the API checks. */
  lockHash: string;
}

/** The API side of reporting. Transient failures reject; `refused` means a definite 4xx. */
export interface Reporter {
  started(jobId: string, r: StartedReport): Promise<{ proceed: boolean }>;
  result(jobId: string, r: ResultReport): Promise<"accepted" | "refused">;
}

export type WorkerLog = Pick<Logger, "info" | "warn" | "error">;

export interface ConsumerOptions {
  /** BullMQ connection; must have maxRetriesPerRequest: null. */
  connection: Redis;
  /** BullMQ queue name, `jobQueue(config).name`. */
  queueName: string;
  /** BullMQ prefix, `jobQueue(config).prefix`. */
  queuePrefix: string;
  concurrency: number;
  workerId: string;
  signer: Signer;
  driver: SandboxDriver;
  reporter: Reporter;
  outbox: Outbox;
  envelope: Omit<EnvelopeVerifyOptions, "now">;
  log: WorkerLog;
  /** Lock TTL; renewed every quarter of it while a job runs, stalls checked every half. Default 8 s. */
  lockDurationMs?: number;
  /** Stalls (lost locks, i.e. crashed workers) before a job fails instead of re-running. Default 1. */
  maxStalledCount?: number;
  /** Delay between re-sends of unacknowledged results. Default 2 s, doubling to 60 s. */
  redeliverBaseMs?: number;
  /** Running jobs per submitter when an envelope carries no quota ([limits] running_jobs). */
  runningJobs?: number;
  /** How long a job waits in delayed when its submitter is at its running cap. Default 1 s. */
  deferMs?: number;
  /** Counters for the node's /metrics (worker/jobs/metrics.ts). */
  metrics?: WorkerMetrics;
  /**
   * `[redis] prefix`: when set, the worker follows cancels (docs/http-api.md "Cancel"): it
   * subscribes to the cancel channel and kills a cancelled job's container.
   */
  redisPrefix?: string;
}

export interface Consumer {
  readonly worker: Worker;
  /** Re-sends every result waiting in the outbox once. */
  flushOutbox(): Promise<void>;
  /** Stop taking jobs; let running ones finish up to graceMs; then force-close. */
  close(graceMs: number): Promise<void>;
}

const ZERO_HASH = "0".repeat(64);
const EMPTY_HASH = outputHash("");
/** How long after it was queued a job waits out a failing service key lookup. */
const KEY_LOOKUP_PATIENCE_MS = 10 * 60_000;

export function startConsumer(o: ConsumerOptions): Consumer {
  const lockDuration = o.lockDurationMs ?? 8_000;
  // Fair share across submitters (platform/node/fairness.ts): a running slot per job.
  const fair = new FairShare(o.connection, o.queuePrefix, o.queueName);
  const slots = new Map<string, string>();
  const deferMs = o.deferMs ?? 1000;
  const runningJobs = o.runningJobs ?? limitsSchema.parse({}).running_jobs;
  const pendingDelivery = new Set<string>();
  let closing = false;
  let timer: NodeJS.Timeout | undefined;
  const retryDelay = new Map<string, number>();
  // Cancels (docs/http-api.md "Cancel"): each running job's abort, fired by the cancel channel.
  const cancels = new Map<string, AbortController>();
  const subscriber = o.redisPrefix !== undefined ? o.connection.duplicate() : undefined;
  if (subscriber && o.redisPrefix !== undefined) {
    const channel = cancelChannel(o.redisPrefix);
    subscriber.on("message", (ch: string, jobId: string) => {
      if (ch === channel) cancels.get(jobId)?.abort();
    });
    subscriber
      .subscribe(channel)
      .catch((e) => o.log.error("cancel channel subscribe failed", { err: String(e) }));
  }
  /** Whether the API marked the job cancelled (read before a run: a message may have been lost). */
  async function cancelRequested(jobId: string): Promise<boolean> {
    if (o.redisPrefix === undefined) return false;
    const v = await o.connection.hget(jobRecordKey(o.redisPrefix, jobId), "cancelRequested");
    return v !== null;
  }

  async function deliver(p: PendingReport): Promise<boolean> {
    try {
      const out = await o.reporter.result(p.jobId, p.report);
      if (out === "refused") {
        o.log.error("the API refused a signed result; kept in outbox/dead", { jobId: p.jobId });
        await o.outbox.bury(p.jobId);
      } else {
        await o.outbox.ack(p.jobId);
      }
      retryDelay.delete(p.jobId);
      return true;
    } catch (e) {
      o.log.warn("result report failed; will re-send the signed result", {
        jobId: p.jobId,
        err: (e as Error).message,
      });
      return false;
    }
  }

  async function flushOutbox(): Promise<void> {
    for (const id of await o.outbox.list()) {
      if (pendingDelivery.has(id)) continue;
      const p = await o.outbox.get(id);
      if (!p) continue;
      pendingDelivery.add(id);
      try {
        await deliver(p);
      } finally {
        pendingDelivery.delete(id);
      }
    }
  }

  function scheduleFlush(): void {
    if (closing || timer) return;
    const base = o.redeliverBaseMs ?? 2000;
    const next = Math.min(60_000, Math.max(base, ...retryDelay.values()));
    timer = setTimeout(async () => {
      timer = undefined;
      await flushOutbox().catch((e) => o.log.error("outbox flush failed", { err: String(e) }));
      const left = await o.outbox.list().catch(() => []);
      for (const id of left) retryDelay.set(id, Math.min(60_000, (retryDelay.get(id) ?? base) * 2));
      if (left.length > 0) scheduleFlush();
    }, next);
    timer.unref();
  }

  /** Sign, persist (before any send), then report. */
  async function finishWith(
    jobId: string,
    attempt: number,
    lockHash: string,
    body: ResultBody,
    run?: SandboxRunResult,
    trace?: Context,
  ) {
    o.metrics?.finished(body.tier, body.status);
    const signed = await signResult(body, o.signer);
    const p: PendingReport = {
      jobId,
      report: {
        type: "result",
        attempt,
        signed,
        stdout: run?.stdout ?? "",
        stderr: run?.stderr ?? "",
        lockHash,
        // The API recomputes the signed digest from it and audits each refusal; a log too long to
        // carry leaves the signed summary alone (docs/sandbox.md, "Egress").
        ...(run?.egress && run.egress.log.length <= MAX_REPORTED_LOG
          ? { egressLog: run.egress.log }
          : {}),
      },
    };
    await o.outbox.put(p);
    pendingDelivery.add(jobId);
    try {
      // The report continues the submit request's trace (the SDK sends its traceparent).
      const delivered = await inSpan("sigil.report", () => deliver(p), {
        ...(trace ? { parent: trace } : {}),
      });
      if (!delivered) scheduleFlush();
    } finally {
      pendingDelivery.delete(jobId);
    }
    return { status: body.status, resultHash: signed.resultHash };
  }

  async function process(job: Job<UntrustedQueuedJob>, token?: string) {
    const jobId = job.id ?? "";
    const takenAt = Date.now();
    // The queue set this lock for this worker alone when it handed over the job: its hash is how
    // the API tells the worker that took the attempt from any other worker key.
    const lockHash = sha256Hex(utf8(token ?? job.token ?? ""));
    // Moves back for a submitter's running cap started the job without running it: not attempts.
    const attempt = Math.max(1, job.attemptsStarted - (await fair.deferrals(jobId)));
    // A result already signed for this job (crash after signing): re-send it, do not run again.
    // It goes out as this attempt, claimed with this attempt's lock, in case the earlier attempt
    // never reached the API.
    const stored = await o.outbox.get(jobId).catch(() => undefined);
    if (stored) {
      o.log.info("re-sending a stored result instead of re-running", { jobId, attempt });
      const pending = { jobId, report: { ...stored.report, attempt, lockHash } };
      await o.outbox.put(pending);
      if (!(await deliver(pending))) scheduleFlush();
      return { status: "redelivered" };
    }

    const raw = job.data?.envelope;
    // The service key lookup failing (the API unreachable, e.g. between two Redis primaries:
    // docs/deployment.md) says nothing about the envelope: the job waits and is tried again, for
    // up to KEY_LOOKUP_PATIENCE_MS after it was queued, instead of being rejected for good.
    let lookupFailed = false;
    const verdict = await verifyEnvelope(raw, {
      ...o.envelope,
      serviceKey: (kid) =>
        o.envelope.serviceKey(kid).catch((e: unknown) => {
          lookupFailed = true;
          throw e;
        }),
      now: Date.now(),
    });
    if (!verdict.ok && lookupFailed && Date.now() - job.timestamp < KEY_LOOKUP_PATIENCE_MS) {
      o.log.warn("service key lookup failed; the job is tried again", {
        jobId,
        detail: verdict.detail,
      });
      await fair.defer(jobId);
      await job.moveToDelayed(Date.now() + deferMs + Math.floor(Math.random() * deferMs), token);
      throw new DelayedError();
    }
    const now = new Date().toISOString();
    if (!verdict.ok || verdict.envelope.jobId !== jobId) {
      const reason = verdict.ok
        ? `malformed: envelope is for job ${verdict.envelope.jobId}, queue job is ${jobId}`
        : `${verdict.reason}: ${verdict.detail}`;
      o.log.warn("envelope rejected; nothing runs", { jobId, reason });
      const claimed = (raw as { envelope?: { image?: unknown; tier?: unknown } } | undefined)
        ?.envelope;
      const hash = verdict.ok ? verdict.envelopeHash : (verdict.envelopeHash ?? hashOf(raw));
      return finishWith(jobId, attempt, lockHash, {
        jobId,
        envelopeHash: hash,
        image:
          typeof claimed?.image === "string" && claimed.image.length > 0
            ? clip(claimed.image, 256)
            : "unknown",
        tier: claimed?.tier === "docker" ? "docker" : "gvisor",
        runtime: null,
        status: "rejected",
        reason: clip(reason, 2048),
        exitCode: null,
        signal: null,
        stdoutHash: EMPTY_HASH,
        stderrHash: EMPTY_HASH,
        truncated: false,
        durationMs: 0,
        startedAt: now,
        finishedAt: now,
        workerId: o.workerId,
      });
    }

    const env = verdict.envelope;
    const submitter = submitterOf(env.submitter);
    const cap = env.quota?.runningJobs ?? runningJobs;
    if (!(await fair.acquire(jobId, submitter, cap, env.spec.timeoutMs, job.priority))) {
      // The submitter has `cap` jobs running: back to delayed (BullMQ's manual pattern, not an
      // attempt), so this slot takes another submitter's job meanwhile.
      await job.moveToDelayed(
        Date.now() + deferMs + Math.floor(Math.random() * (deferMs / 4)),
        token,
      );
      throw new DelayedError();
    }
    slots.set(jobId, submitter);
    // Enqueued (by the API) → taken here, in the submit request's trace (docs/operating.md).
    const trace = contextFromTraceparent(env.traceparent);
    o.metrics?.queueWait((takenAt - job.timestamp) / 1000);
    pastSpan("sigil.queue.wait", trace, job.timestamp, takenAt, { "sigil.job.tier": env.tier });
    // Registered before the start is recorded: a cancel published after the API marked the job
    // running finds this job's abort.
    const cancel = new AbortController();
    cancels.set(jobId, cancel);
    try {
      // Record the attempt before running: no run without a record, and a finished job is not re-run.
      const ack = await context.with(trace, () =>
        o.reporter.started(jobId, {
          type: "started",
          attempt,
          workerId: o.workerId,
          envelopeHash: verdict.envelopeHash,
          lockHash,
        }),
      );
      if (!ack.proceed) {
        o.log.info("job already finished; not running it again", { jobId, attempt });
        return { status: "already-finished" };
      }
      if (await cancelRequested(jobId)) cancel.abort();

      let run: SandboxRunResult;
      o.metrics?.running(1);
      try {
        run = cancel.signal.aborted
          ? cancelledRun(env.tier)
          : await inSpan(
              "sigil.container.run",
              () =>
                o.driver.runJob(sandboxRunSpec(env), {
                  signal: cancel.signal,
                  ...(env.spec.network.allow.length > 0 ? { egress: env.spec.network.allow } : {}),
                }),
              { parent: trace, attributes: { "sigil.job.tier": env.tier } },
            );
      } catch (e) {
        run = errorResult(env, (e as Error).message);
      } finally {
        o.metrics?.running(-1);
      }
      return await report(job, env, verdict.envelopeHash, attempt, lockHash, run, trace, cancel);
    } finally {
      cancels.delete(jobId);
    }
  }

  async function report(
    job: Job<UntrustedQueuedJob>,
    env: Parameters<typeof sandboxRunSpec>[0] & { image: string },
    envelopeHash: string,
    attempt: number,
    lockHash: string,
    run: SandboxRunResult,
    trace: Context,
    cancel: AbortController,
  ) {
    const jobId = env.jobId;
    // A cancel's kill is a `killed` result like any other, signed; its reason says why.
    const cancelled = cancel.signal.aborted && run.status === "killed";
    if (run.status !== "error") o.metrics?.ran(env.tier, run.durationMs / 1000);
    if (typeof run.warm === "boolean") o.metrics?.warmPool(env.tier, run.warm);
    const maxAttempts = job.opts.attempts ?? 1;
    if (run.status === "error" && job.attemptsMade + 1 < maxAttempts) {
      // Infrastructure failure: the queue retries with backoff (a recorded new attempt).
      throw new Error(`sandbox error: ${run.error ?? run.stderr.slice(0, 200)}`);
    }
    const status: TerminalStatus = run.status;
    return finishWith(
      jobId,
      attempt,
      lockHash,
      {
        jobId,
        envelopeHash,
        image: env.image,
        tier: env.tier,
        runtime: run.runtime,
        status,
        reason: cancelled
          ? "cancelled"
          : run.status === "error"
            ? clip(run.error ?? "sandbox infrastructure error", 2048)
            : null,
        exitCode: run.exitCode,
        signal: run.signal ?? null,
        stdoutHash: outputHash(run.stdout),
        stderrHash: outputHash(run.stderr),
        truncated: run.truncated,
        durationMs: Math.max(0, Math.round(run.durationMs)),
        startedAt: run.startedAt,
        finishedAt: run.finishedAt,
        workerId: o.workerId,
        ...(run.egress ? { egress: run.egress.summary } : {}),
      },
      run,
      trace,
    );
  }

  /** Runs a job, then gives back its submitter's running slot, however it ended. */
  async function processFairly(job: Job<UntrustedQueuedJob>, token?: string) {
    const jobId = job.id ?? "";
    try {
      const out = await process(job, token);
      await fair.forget(jobId).catch(() => undefined);
      return out;
    } finally {
      const submitter = slots.get(jobId);
      if (submitter !== undefined) {
        slots.delete(jobId);
        // A lost release costs the slot until the job's timeout has passed (its lease).
        await fair
          .releaseRun(jobId, submitter)
          .catch((e) => o.log.warn("running slot release failed", { jobId, err: String(e) }));
      }
    }
  }

  const worker = new Worker<UntrustedQueuedJob>(o.queueName, processFairly, {
    connection: o.connection,
    prefix: o.queuePrefix,
    concurrency: o.concurrency,
    // A SIGKILLed worker's job is re-run within ~lockDuration + stalledInterval (8 + 4 s by
    // default: the 15 s), while a healthy job's lock is renewed every lockDuration / 4, so
    // it lapses only if three renewals in a row are missed (an event loop blocked for 6 s), not
    // on one slow round trip (docs/deployment.md "Worker crashes and stalls").
    lockDuration,
    lockRenewTime: Math.max(250, Math.floor(lockDuration / 4)),
    stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
    maxStalledCount: o.maxStalledCount ?? 1,
    autorun: true,
  });
  worker.on("failed", (job, err) =>
    o.log.warn("job attempt failed", {
      jobId: job?.id,
      attempt: job?.attemptsStarted,
      err: err.message,
    }),
  );
  worker.on("error", (err) => o.log.error("queue error", { err: err.message }));
  // Results a previous run signed but could not deliver.
  void flushOutbox()
    .then(async () => {
      if ((await o.outbox.list()).length > 0) scheduleFlush();
    })
    .catch((e) => o.log.error("outbox flush failed", { err: String(e) }));

  return {
    worker,
    flushOutbox,
    async close(graceMs: number) {
      closing = true;
      if (timer) clearTimeout(timer);
      subscriber?.disconnect();
      let t: NodeJS.Timeout | undefined;
      const graceful = worker.close().then(() => true);
      const expired = new Promise<boolean>((r) => {
        t = setTimeout(() => r(false), graceMs);
      });
      const clean = await Promise.race([graceful, expired]);
      clearTimeout(t);
      // Past the grace period the job stays unfinished in the queue: its lock lapses and it is a
      // recorded retry on the next worker, never a silent loss.
      if (!clean) await worker.close(true);
      await flushOutbox().catch(() => undefined);
    },
  };
}

/** A job cancelled before its container started: killed without running. */
function cancelledRun(tier: "docker" | "gvisor"): SandboxRunResult {
  const at = new Date().toISOString();
  return {
    status: "killed",
    exitCode: null,
    signal: null,
    stdout: "",
    stderr: "",
    truncated: false,
    durationMs: 0,
    startedAt: at,
    finishedAt: at,
    runtime: tier === "gvisor" ? "runsc" : "runc",
  };
}

function hashOf(raw: unknown): string {
  try {
    return sha256Hex(canonicalJson(raw));
  } catch {
    return ZERO_HASH;
  }
}
