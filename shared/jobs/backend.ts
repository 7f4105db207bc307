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
  /** The approval a held job waits for (status awaiting_approval until it is answered), or null. */
  approvalId: string | null;
  /**
   * Who claimed each attempt: attempt number → worker key id. A worker claims an attempt by
   * proving it holds the queue's lock for it (see ClaimInfo); only that key may start the
   * attempt or report its result (docs/http-api.md Jobs).
   */
  claims: Record<string, string>;
}

/** A verified result as stored: the signed report plus the output it hashes. */
export interface StoredResult extends SignedResult {
  stdout: string;
  stderr: string;
}

export type JobEventType = "awaiting_approval" | "queued" | "started" | "output" | "finished";

export interface JobEvent {
  /** Stream position; pass it back as `after` to resume (SSE Last-Event-ID). */
  id: string;
  type: JobEventType;
  data: Record<string, unknown>;
}

export type ReleaseOutcome =
  /** This call made the transition. */
  | { outcome: "released" | "rejected"; record: JobRecord }
  /** Released before (queued, not started): the queue add was repeated, a no-op if it landed. */
  | { outcome: "requeued"; record: JobRecord }
  /** Nothing to do: the job is not held (another caller got there first, or it never was). */
  | { outcome: "unchanged"; record: JobRecord }
  | { outcome: "missing" };

/** Why a claim, a start or a result of a worker key was refused. */
export type ClaimRefusal =
  /** The key does not hold the queue's lock for this attempt (it did not take the job). */
  | "no-lock"
  /** Another worker key claimed this attempt. */
  | "claimed-by-other"
  /** The key never claimed this attempt. */
  | "not-claimant";

export type ClaimOutcome =
  /** The attempt is now this key's. */
  | { outcome: "claimed"; record: JobRecord }
  /** It already was this key's. */
  | { outcome: "duplicate"; record: JobRecord }
  /** The job already has its result. */
  | { outcome: "finished"; record: JobRecord }
  | { outcome: "refused"; reason: ClaimRefusal; record: JobRecord }
  | { outcome: "missing" };

export type StartOutcome =
  /** First start, or a recorded retry (attempt > 1). */
  | { outcome: "started"; record: JobRecord }
  /** The same attempt reported twice: nothing changed. */
  | { outcome: "duplicate"; record: JobRecord }
  /** The job already has its result: the worker must not run it again. */
  | { outcome: "finished"; record: JobRecord }
  /** The key did not claim this attempt. */
  | { outcome: "refused"; reason: ClaimRefusal; record: JobRecord }
  | { outcome: "missing" };

export type FinishOutcome =
  | { outcome: "stored"; record: JobRecord }
  | { outcome: "duplicate"; record: JobRecord }
  | { outcome: "conflict"; record: JobRecord }
  /** The key did not claim this attempt. */
  | { outcome: "refused"; reason: ClaimRefusal; record: JobRecord }
  | { outcome: "missing" };

/**
 * A worker's claim on one attempt of a job. `lockHash` is sha256 (hex) of the BullMQ lock token
 * the worker got when the queue handed it the job: the queue sets that lock only for the worker
 * that moved the job to active, so the claim is bound to taking the job, not to asking for it.
 */
export interface ClaimInfo {
  attempt: number;
  workerKid: string;
  lockHash: string;
}

export interface StartInfo {
  attempt: number;
  workerId: string;
  workerKid: string;
  at: string;
}

/** Who reports a result: the attempt and the worker key that must have claimed it. */
export interface ResultClaim {
  attempt: number;
  workerKid: string;
  /**
   * The worker key's Ed25519 public key, base64url. The Node job gateway verifies a forwarded
   * result under it (its RFC 7638 thumbprint must be the key id); the Redis backend ignores it.
   */
  workerPublicKey: string;
}

export type CancelOutcome =
  /** Queued or held: it ended `killed` in this call. */
  | { outcome: "cancelled"; record: JobRecord }
  /** Running: its worker was told to kill it and will report a signed `killed` result. */
  | { outcome: "killing"; record: JobRecord }
  /** It had already finished (the finish won the race): nothing changed. */
  | { outcome: "finished"; record: JobRecord }
  | { outcome: "missing" };

/** Whose jobs a listing covers: one subject's, one key's, or (admin, auditor) everyone's. */
export type JobScope = { subject: string } | { kid: string } | "all";

export interface JobListQuery {
  scope: JobScope;
  status?: JobStatus;
  /** 1..100. */
  limit: number;
  /** From the previous page's `cursor`. */
  cursor?: string;
}

export interface JobPage {
  jobs: JobRecord[];
  /** Pass back for the next page; absent on the last page. */
  cursor?: string;
}

export interface JobsBackend {
  /**
   * Creates the record (status queued, event `queued`) and enqueues the signed envelope with the
   * jobId as the queue's job id. Idempotent: a second call for the same jobId changes nothing.
   */
  submit(envelope: SignedEnvelope, envelopeHash: string): Promise<JobRecord>;
  /**
   * Like submit, but holds the signed envelope in the record (status awaiting_approval, event
   * `awaiting_approval`) without queueing it, until `release` or `reject`. Idempotent like submit.
   */
  hold(envelope: SignedEnvelope, envelopeHash: string, approvalId: string): Promise<JobRecord>;
  /**
   * Queues a held job's frozen envelope exactly once: an atomic compare-and-set awaiting_approval →
   * queued (event `queued`), then the idempotent queue add. A job released before whose add may
   * not have happened (queued, never started) is added again, which is a no-op when it is there.
   */
  release(jobId: string): Promise<ReleaseOutcome>;
  /** Ends a held job `rejected` (compare-and-set from awaiting_approval only, event `finished`). */
  reject(jobId: string, reason: string): Promise<ReleaseOutcome>;
  get(jobId: string): Promise<JobRecord | null>;
  /**
   * Records that `workerKid` took attempt `attempt`, if it proves the queue's lock for it. An
   * attempt is claimed once; the same key again is a duplicate, another key is refused.
   */
  claim(jobId: string, info: ClaimInfo): Promise<ClaimOutcome>;
  /** Marks the attempt running; only the key that claimed the attempt may. */
  markStarted(jobId: string, info: StartInfo): Promise<StartOutcome>;
  /**
   * Stores a verified result once; the same result again is a duplicate, another a conflict.
   * Only the key that claimed the attempt may finish the job (checked atomically with the store).
   */
  finish(jobId: string, result: StoredResult, claim: ResultClaim): Promise<FinishOutcome>;
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
  /**
   * Cancels a job, decided against its finish atomically: exactly one final state per job
   * (docs/http-api.md "Cancel"). Absent on a backend that cannot (the route answers 503).
   */
  cancel?(jobId: string, reason: string): Promise<CancelOutcome>;
  /**
   * Takes a running job from its worker and puts it back in the queue for another (a quarantined
   * worker, docs/incidents.md "Quarantine"): the next start is a recorded retry. False when the
   * job is not running on the queue (finished, or already back).
   */
  requeue?(jobId: string): Promise<boolean>;
  /** Jobs newest first, paged; each page reads a bounded number of index entries. */
  list?(query: JobListQuery): Promise<JobPage>;
}
