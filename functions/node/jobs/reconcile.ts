// Watches the queue so that no job ends silently: a job the queue gives up on (stalled more than
// maxStalledCount, or out of retries without a report) becomes `error` in its record, and every
// stall is audited, because a stall means a worker died mid-job and the job may run again.
import { QueueEvents } from "bullmq";
import type { Redis } from "ioredis";
import { queuePrefix } from "../../../platform/node/queue";
import { clip } from "../../../shared/encoding";
import type { JobsBackend } from "../../../shared/jobs/backend";
import type { JobAuditEvent } from "../../routes/jobs";

export interface ReconcilerOptions {
  /** Any connection; the listener blocks on its own duplicate. */
  redis: Redis;
  prefix: string;
  queueName: string;
  backend: JobsBackend;
  audit: (e: JobAuditEvent) => Promise<void>;
  onError?: (e: Error) => void;
}

export interface Reconciler {
  /** Resolves once the listener is connected and reading. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export function startReconciler(opts: ReconcilerOptions): Reconciler {
  const conn = opts.redis.duplicate({ maxRetriesPerRequest: null });
  const events = new QueueEvents(opts.queueName, {
    connection: conn,
    prefix: queuePrefix(opts.prefix),
  });
  const report = (e: unknown) => opts.onError?.(e instanceof Error ? e : new Error(String(e)));

  events.on("stalled", ({ jobId }) => {
    opts
      .audit({
        eventType: "job.stalled",
        details: { jobId, reason: "worker lost the job lock; the queue will retry or fail it" },
      })
      .catch(report);
  });
  events.on("failed", ({ jobId, failedReason }) => {
    (async () => {
      const reason = clip(`queue gave up: ${failedReason}`, 1024);
      const out = await opts.backend.fail(jobId, "error", reason);
      if (out.outcome === "stored")
        await opts.audit({ eventType: "job.failed", details: { jobId, reason } });
    })().catch(report);
  });
  events.on("error", report);

  return {
    ready: () => events.waitUntilReady().then(() => undefined),
    close: async () => {
      await events.close();
      conn.disconnect();
    },
  };
}
