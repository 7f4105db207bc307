// A worker node's metrics on prom-client (docs/operating.md "Metrics and traces"), served on its
// own address (`[metrics] worker_listen`). Labels from bounded sets only: tier, status, result.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Tier } from "../../shared/risk";

/** What the consumer reports; every call is cheap and synchronous. */
export interface WorkerMetrics {
  /** A job taken from the queue, `seconds` after it was enqueued (deferrals included). */
  queueWait(seconds: number): void;
  /** A job that ended with a signed result (status `rejected` when its envelope was refused). */
  finished(tier: Tier, status: string): void;
  /** The container's run time of a job that ran. */
  ran(tier: Tier, seconds: number): void;
  /** Whether the job's container came from the warm pool. */
  warmPool(tier: Tier, hit: boolean): void;
  /** Jobs running on this node now: +1 at start, -1 at the end. */
  running(delta: 1 | -1): void;
}

/** Run-time buckets in seconds: 50 ms to 10 min (the longest job timeout). */
const RUN = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Queue-wait buckets in seconds: 10 ms to 30 min. */
const WAIT = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

export function prometheusWorkerMetrics(opts: { processMetrics?: boolean } = {}): WorkerMetrics & {
  registry: Registry;
  expose(): Promise<{ contentType: string; body: string }>;
} {
  const registry = new Registry();
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: "sigil_worker_" });
  const registers = [registry];
  const jobs = new Counter({
    name: "sigil_worker_jobs_total",
    help: "Jobs that ended with a signed result, by tier and status",
    labelNames: ["tier", "status"] as const,
    registers,
  });
  const run = new Histogram({
    name: "sigil_worker_job_run_seconds",
    help: "Container run time of the jobs that ran, by tier",
    labelNames: ["tier"] as const,
    buckets: RUN,
    registers,
  });
  const wait = new Histogram({
    name: "sigil_worker_queue_wait_seconds",
    help: "Time from a job's enqueueing to a worker taking it",
    buckets: WAIT,
    registers,
  });
  const warm = new Counter({
    name: "sigil_worker_warm_pool_total",
    help: "Containers for jobs, by tier and whether the warm pool had one (hit) or not (miss)",
    labelNames: ["tier", "result"] as const,
    registers,
  });
  const running = new Gauge({
    name: "sigil_worker_jobs_running",
    help: "Jobs running on this worker node",
    registers,
  });
  return {
    registry,
    queueWait: (seconds) => wait.observe(Math.max(0, seconds)),
    finished: (tier, status) => jobs.inc({ tier, status }),
    ran: (tier, seconds) => run.observe({ tier }, Math.max(0, seconds)),
    warmPool: (tier, hit) => warm.inc({ tier, result: hit ? "hit" : "miss" }),
    running: (delta) => running.inc(delta),
    async expose() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
