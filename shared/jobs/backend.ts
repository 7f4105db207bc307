// The jobs port: where job records, their event feed and the queue live. Node implements it on
// Redis + BullMQ (functions/node/jobs); the edge can implement it by forwarding to the Node job
// gateway (SIGIL_GATEWAY_URL). Every method rejects when the store is unreachable (fail closed).
import type { Tier } from "../risk";
import type { SignedEnvelope } from "./envelope";
import type { JobStatus, SignedResult } from "./result";

export interface JobRecord {
  jobId: string;
  status: JobStatus;
  tier: Tier;
  image: string;
  riskScore: number | null;
  submitterKid: string;
  subject: string | null;
  envelopeHash: string;
  policyDecisionId: string;
  createdAt: string;
  updatedAt: string;
  expiresAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** How many times a worker started this job (a value > 1 is a recorded retry). */
  attempts: number;
  workerId: string | null;
  workerKid: string | null;
  /** Why the job ended without a result from a sandbox (rejected, error). */
  reason: string | null;
  result: StoredResult | null;
}

/** A verified result as stored: the signed report plus the output it hashes. */
export interface StoredResult extends SignedResult {
  stdout: string;
  stderr: string;
}

export type JobEventType = "queued" | "started" | "output" | "finished";

export interface JobEvent {
  /** Stream position; pass it back as `after` to resume (SSE Last-Event-ID). */
  id: string;
  type: JobEventType;
  data: Record<string, unknown>;
}

export type StartOutcome =
  /** First start, or a recorded retry (attempt > 1). */
  | { outcome: "started"; record: JobRecord }
  /** The same attempt reported twice: nothing changed. */
  | { outcome: "duplicate"; record: JobRecord }
  /** The job already has its result: the worker must not run it again. */
  | { outcome: "finished"; record: JobRecord }
  | { outcome: "missing" };

export type FinishOutcome =
  | { outcome: "stored"; record: JobRecord }
  | { outcome: "duplicate"; record: JobRecord }
  | { outcome: "conflict"; record: JobRecord }
  | { outcome: "missing" };

export interface StartInfo {
  attempt: number;
  workerId: string;
  workerKid: string;
  at: string;
}

export interface JobsBackend {
  /**
   * Creates the record (status queued, event `queued`) and enqueues the signed envelope with the
   * jobId as the queue's job id. Idempotent: a second call for the same jobId changes nothing.
   */
  submit(envelope: SignedEnvelope, envelopeHash: string): Promise<JobRecord>;
  get(jobId: string): Promise<JobRecord | null>;
  markStarted(jobId: string, info: StartInfo): Promise<StartOutcome>;
  /** Stores a verified result once; the same result again is a duplicate, another a conflict. */
  finish(jobId: string, result: StoredResult): Promise<FinishOutcome>;
  /** Ends a job without a sandbox result (worker lost, rejected upstream); no-op when finished. */
  fail(jobId: string, status: "error" | "rejected", reason: string): Promise<FinishOutcome>;
  /**
   * Events after `after` (exclusive; undefined = from the start), waiting up to timeoutMs for at
   * least one. Resolves with [] on timeout or abort.
   */
  events(
    jobId: string,
    after: string | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<JobEvent[]>;
  /** The record once it is terminal, or as it is when timeoutMs passes; null when unknown. */
  wait(jobId: string, timeoutMs: number, signal?: AbortSignal): Promise<JobRecord | null>;
  /**
   * How many unfinished jobs this submitter has (its subject's, else its key's). Lets the route
   * refuse a full queue before any policy or audit work; `submit` enforces the cap atomically
   * (rejecting with LimitExceededError) either way.
   */
  pending?(submitter: { kid: string; subject: string | null }): Promise<number>;
}
