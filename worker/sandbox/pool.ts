// Warm pool for one container shape: containers created, attached and started ahead of time,
// each waiting on stdin for exactly one job. take() hands one out and never returns it to the
// pool (the caller removes it after the job). The caller calls refill() when its job is done
// (or a short delay later for long jobs): refilling at take() time made every warm job compete
// with a container create/start for dockerd and the CPU (measured: ~25% slower short jobs
// under runsc).
import type { Prepared } from "./container";
import type { SandboxEvent } from "./types";

export interface PoolDeps {
  key: string;
  size: number;
  prepare: () => Promise<Prepared>;
  discard: (p: Prepared) => void;
  onEvent: (e: SandboxEvent) => void;
}

export class WarmPool {
  private readonly idle: Prepared[] = [];
  private filling = 0;
  private failures = 0;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly d: PoolDeps) {}

  get name(): string {
    return this.d.key;
  }

  get available(): number {
    return this.idle.length;
  }

  /** A live warm container, or undefined when none is ready (the caller goes cold, then refills). */
  take(): Prepared | undefined {
    let p = this.idle.shift();
    while (p?.hasExited) {
      // It died while idle (dockerd restart, external kill): never hand out a dead container.
      this.d.onEvent({
        type: "pool.discarded",
        message: "warm container exited while idle",
        containerId: p.id,
        pool: this.d.key,
      });
      this.d.discard(p);
      p = this.idle.shift();
    }
    return p;
  }

  /** Start as many creations as are missing (in the background; the promise is for warm-up). */
  refill(): Promise<void> {
    const jobs: Promise<void>[] = [];
    while (
      !this.closed &&
      this.retryTimer === undefined &&
      this.idle.length + this.filling < this.d.size
    ) {
      this.filling++;
      const job = this.d
        .prepare()
        .then(
          (p) => {
            this.failures = 0;
            if (this.closed) {
              this.d.discard(p);
              return;
            }
            this.idle.push(p);
            // Drop it from the pool as soon as it dies, so take() stays O(1) in the common case.
            void p.exited.then(() => {
              const i = this.idle.indexOf(p);
              if (i >= 0 && !this.closed) {
                this.idle.splice(i, 1);
                this.d.onEvent({
                  type: "pool.discarded",
                  message: "warm container exited while idle",
                  containerId: p.id,
                  pool: this.d.key,
                });
                this.d.discard(p);
                void this.refill();
              }
            });
            this.d.onEvent({
              type: "pool.filled",
              message: `warm container ready (${this.idle.length}/${this.d.size})`,
              containerId: p.id,
              pool: this.d.key,
            });
          },
          (e: unknown) => {
            this.failures++;
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
        .finally(() => {
          this.filling--;
          this.inflight.delete(job);
        });
      this.inflight.add(job);
      jobs.push(job);
    }
    return Promise.all(jobs).then(() => {});
  }

  /** Stop refilling and hand back every idle container for removal. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await Promise.all([...this.inflight]);
    for (const p of this.idle.splice(0)) this.d.discard(p);
  }
}
