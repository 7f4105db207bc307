// Warm pool for one container shape: containers created, attached and started ahead of time,
// each waiting on stdin for exactly one job. take() hands one out and never returns it to the
// pool (the caller removes it after the job).
//
// The pool adapts to the arrival rate (docs/sandbox.md, "Warm pool protocol"): its target is the
// configured size (the floor) plus the takes seen in the last four creation times (what arrives
// while replacements are being made), never above the hard cap. A target is kept for `idleMs`
// after demand last reached it, so the pool a batch of jobs grew is refilled and still there for
// the next batch; then it follows the demand down again. A take starts its replacement at once,
// before the pool is empty; growing beyond that waits for a pause. Creations run at most
// `maxCreating` at a time (on a small machine, more at once only slows each one). A take that
// finds the pool empty while a creation is under way waits for that container, which started
// earlier than a cold one would; with none under way it returns nothing and the caller goes
// cold. After `idleMs` without a take, idle containers beyond the floor are removed.
import { performance } from "node:perf_hooks";
import type { Prepared } from "./container";
import type { SandboxEvent } from "./types";

export interface PoolDeps {
  key: string;
  /** The floor: containers kept ready when no job arrives. */
  size: number;
  /** Hard cap on idle plus creating containers (raised to `size` if below it). */
  max: number;
  /** Creations under way at once, at most. */
  maxCreating: number;
  /** Idle time after which the pool shrinks back to `size`. */
  idleMs: number;
  prepare: () => Promise<Prepared>;
  discard: (p: Prepared) => void;
  onEvent: (e: SandboxEvent) => void;
}

export interface PoolInfo {
  idle: number;
  creating: number;
  /** Jobs waiting for a container under creation. */
  waiting: number;
  target: number;
  max: number;
}

/** Before any creation was timed: a guess on the slow side. */
const INITIAL_CREATE_MS = 1000;
/** The demand window: four creation times, within these bounds. */
const WINDOW_MIN_MS = 1_000;
const WINDOW_MAX_MS = 10_000;
/** A pause between takes of one creation time, within these bounds, lets a pool refill. */
const QUIET_MIN_MS = 200;
const QUIET_MAX_MS = 2_000;

export class WarmPool {
  private readonly idle: Prepared[] = [];
  /** Jobs waiting for the next finished creation; never more than `creating`. */
  private readonly waiters: ((p: Prepared | undefined) => void)[] = [];
  /** Times of recent takes (hits and misses alike: the demand), oldest first. */
  private readonly takes: number[] = [];
  private readonly max: number;
  private creating = 0;
  /** Replacements for taken or dead containers not started yet (maxCreating was reached). */
  private owed = 0;
  /** Whether refill() may grow the pool to its target (between batches), or only replace. */
  private growing = true;
  /** The target, and when demand last reached it (it is kept for idleMs after that). */
  private grown: number;
  private grownAt = 0;
  private createMs = INITIAL_CREATE_MS;
  private failures = 0;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private quietTimer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly d: PoolDeps) {
    this.max = Math.max(d.size, d.max);
    this.grown = d.size;
  }

  get name(): string {
    return this.d.key;
  }

  get available(): number {
    return this.idle.length;
  }

  info(): PoolInfo {
    return {
      idle: this.idle.length,
      creating: this.creating,
      waiting: this.waiters.length,
      target: this.target(),
      max: this.max,
    };
  }

  /** How many containers (idle plus creating) the pool aims to hold now. */
  private target(now = performance.now()): number {
    const window = Math.min(WINDOW_MAX_MS, Math.max(WINDOW_MIN_MS, 4 * this.createMs));
    while (this.takes.length > 0 && (this.takes[0] ?? 0) < now - window) this.takes.shift();
    const demand = Math.min(this.max, this.d.size + this.takes.length);
    if (demand >= this.grown || now - this.grownAt > this.d.idleMs) {
      this.grown = demand;
      this.grownAt = now;
    }
    return this.grown;
  }

  /**
   * A live warm container; if none is idle but one is being created for the pool, waits for it.
   * Undefined when there is nothing to wait for (the caller goes cold).
   */
  async take(): Promise<Prepared | undefined> {
    if (this.closed) return undefined;
    const now = performance.now();
    this.takes.push(now);
    // The target counts at most `max` takes, so older ones beyond that need not be kept.
    if (this.takes.length > this.max) this.takes.shift();
    this.armIdleTimer();
    let p = this.idle.shift();
    while (p?.hasExited) {
      // It died while idle (dockerd restart, external kill): never hand out a dead container.
      this.discardDead(p);
      p = this.idle.shift();
    }
    if (!p && this.creating > this.waiters.length) {
      const waited = new Promise<Prepared | undefined>((res) => this.waiters.push(res));
      this.replace();
      return waited;
    }
    this.replace();
    return p;
  }

  /**
   * After a take: one replacement now, so the pool keeps up with a batch; growing to a higher
   * target waits until takes pause for about one creation time. On a small machine every creation
   * competes with the running jobs for the CPU, and the extra containers serve the next batch.
   */
  private replace(): void {
    this.owed++;
    this.growing = false;
    void this.refill();
    clearTimeout(this.quietTimer);
    this.quietTimer = setTimeout(
      () => {
        this.quietTimer = undefined;
        this.growing = true;
        void this.refill();
      },
      Math.min(QUIET_MAX_MS, Math.max(QUIET_MIN_MS, this.createMs)),
    );
    this.quietTimer.unref();
  }

  /** Fill up to the floor; resolves when that many are idle, or nothing more is being created. */
  async warm(): Promise<void> {
    while (!this.closed && this.retryTimer === undefined && this.idle.length < this.d.size) {
      void this.refill();
      if (this.inflight.size === 0) return;
      await Promise.race(this.inflight);
    }
  }

  /**
   * Start the creations that are missing (in the background; the promise is for warm-up): up to
   * the target, at most maxCreating at once. Each finished creation calls it again.
   */
  refill(): Promise<void> {
    const jobs: Promise<void>[] = [];
    const target = this.target();
    const goal = this.growing
      ? target
      : Math.min(target, this.idle.length + this.creating + this.owed);
    while (
      !this.closed &&
      this.retryTimer === undefined &&
      this.creating < this.d.maxCreating &&
      this.idle.length + this.creating < goal
    ) {
      this.owed = Math.max(0, this.owed - 1);
      jobs.push(this.createOne());
    }
    // At or above its target the pool owes nothing: it shrinks by not replacing.
    if (this.idle.length + this.creating >= target) this.owed = 0;
    return Promise.all(jobs).then(() => {});
  }

  private createOne(): Promise<void> {
    this.creating++;
    const t0 = performance.now();
    const job = this.d
      .prepare()
      .then(
        (p) => {
          this.creating--;
          this.failures = 0;
          this.createMs = 0.7 * this.createMs + 0.3 * (performance.now() - t0);
          if (this.closed) {
            this.d.discard(p);
            return;
          }
          const waiter = this.waiters.shift();
          if (waiter) {
            waiter(p);
          } else {
            this.idle.push(p);
            // Drop it as soon as it dies, so take() stays O(1) in the common case.
            void p.exited.then(() => {
              const i = this.idle.indexOf(p);
              if (i >= 0 && !this.closed) {
                this.idle.splice(i, 1);
                this.discardDead(p);
                void this.refill();
              }
            });
          }
          this.d.onEvent({
            type: "pool.filled",
            message: `warm container ready (${this.idle.length} idle, ${waiter ? "handed to a waiting job" : "pooled"})`,
            containerId: p.id,
            pool: this.d.key,
          });
          void this.refill();
        },
        (e: unknown) => {
          this.creating--;
          this.failures++;
          // Waiters beyond the creations still under way would wait for nothing: they go cold.
          while (this.waiters.length > this.creating) this.waiters.pop()?.(undefined);
          const backoff = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
          this.d.onEvent({
            type: "pool.fill_failed",
            message: `creating a warm container failed (retry in ${backoff} ms): ${e instanceof Error ? e.message : String(e)}`,
            pool: this.d.key,
          });
          if (!this.closed && this.retryTimer === undefined) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = undefined;
              void this.refill();
            }, backoff);
            this.retryTimer.unref();
          }
        },
      )
      .finally(() => this.inflight.delete(job));
    this.inflight.add(job);
    return job;
  }

  private discardDead(p: Prepared): void {
    this.owed++;
    this.d.onEvent({
      type: "pool.discarded",
      message: "warm container exited while idle",
      containerId: p.id,
      pool: this.d.key,
    });
    this.d.discard(p);
  }

  /** After idleMs without a take, remove idle containers beyond the floor (newest first). */
  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      // The demand that grew the pool is over.
      this.takes.length = 0;
      this.owed = 0;
      this.grown = this.d.size;
      let extra = this.idle.length + this.creating - this.d.size;
      while (extra > 0 && this.idle.length > 0 && !this.closed) {
        const p = this.idle.pop();
        if (p) this.d.discard(p);
        extra--;
      }
      if (extra > 0 && !this.closed) this.armIdleTimer(); // creations still under way
    }, this.d.idleMs);
    this.idleTimer.unref();
  }

  /** Stop refilling, release waiting jobs (they go cold) and hand back every idle container. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.quietTimer);
    this.retryTimer = undefined;
    this.idleTimer = undefined;
    this.quietTimer = undefined;
    for (const w of this.waiters.splice(0)) w(undefined);
    await Promise.all([...this.inflight]);
    for (const p of this.idle.splice(0)) this.d.discard(p);
  }
}
