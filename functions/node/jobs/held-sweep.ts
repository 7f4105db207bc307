// The sweep of held jobs (docs/governance.md "Approvals"): every interval, each job in the Redis set
// of held and released-but-unconfirmed jobs is moved on: released when its approval is approved,
// rejected when it is denied or expired, and queued again when a release's process died between
// its compare-and-set and the queue add (the job is queued, never started, and the add is
// idempotent by jobId, so this cannot run it twice). No timer state lives in a process: a restart
// or another API process picks up where this one stopped, and any number of sweeps may run at once.
import type { ApprovalService } from "../../../shared/approvals";
import { resolveHeldJob } from "../../../shared/jobs/held";
import type { JobAuditEvent } from "../../../shared/jobs/submit";
import type { RedisJobsBackend } from "./redis-backend";

export interface HeldSweepOptions {
  backend: RedisJobsBackend;
  approvals: ApprovalService;
  audit: (e: JobAuditEvent) => Promise<void>;
  /** Default 1000 ms. */
  intervalMs?: number;
  now?: () => number;
  onError?: (e: Error) => void;
}

export interface HeldSweep {
  /** One pass over the set; resolves with how many jobs it released or rejected. */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

export function startHeldSweep(opts: HeldSweepOptions): HeldSweep {
  const ports = {
    backend: opts.backend,
    approvals: opts.approvals,
    audit: opts.audit,
    now: opts.now ?? Date.now,
  };
  const report = (e: unknown) => opts.onError?.(e instanceof Error ? e : new Error(String(e)));
  async function sweep(): Promise<number> {
    let moved = 0;
    for (const id of await opts.backend.held()) {
      try {
        const out = await resolveHeldJob(id, ports, { confirm: true });
        if (out === "released" || out === "rejected") moved++;
      } catch (e) {
        report(e);
      }
    }
    return moved;
  }
  let running: Promise<unknown> = Promise.resolve();
  let closed = false;
  const timer = setInterval(() => {
    // One pass at a time in this process; other processes' passes are safe alongside.
    running = running.then(() => (closed ? 0 : sweep().catch(report)));
  }, opts.intervalMs ?? 1000);
  timer.unref?.();
  return {
    sweep,
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
