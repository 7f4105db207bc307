// What a quarantine does to jobs (docs/incidents.md "Quarantine"), run once by the process whose
// place won (QuarantineService.onPlaced): a subject's or key's unfinished jobs are cancelled
// (queued ones end `killed`, running ones are killed on their workers); a worker's running jobs go
// back to the queue for another worker and the keys it ran them with are quarantined too (a
// suspension: lifting the worker's quarantine lifts them; nothing is revoked).
import type { JobRecord, JobScope, JobsBackend } from "../shared/jobs/backend";
import type { JobStatus } from "../shared/jobs/result";
import {
  MAX_QUARANTINE_PAGE,
  type QuarantineRecord,
  type QuarantineService,
} from "../shared/quarantine";
import type { AuditInput } from "./audit-sink";

/** Jobs one quarantine visits at most (a submitter's unfinished jobs are capped far below). */
const MAX_JOBS = 10_000;
const UNFINISHED: JobStatus[] = ["awaiting_approval", "queued", "running"];

export interface QuarantineJobsDeps {
  jobs: JobsBackend;
  audit: (e: AuditInput) => Promise<unknown>;
  /** The service itself (set after it is built): a worker's keys are quarantined through it. */
  service: () => QuarantineService | undefined;
}

async function* unfinished(jobs: JobsBackend, scope: JobScope): AsyncGenerator<JobRecord> {
  if (!jobs.list) return;
  let seen = 0;
  for (const status of UNFINISHED) {
    let cursor: string | undefined;
    do {
      const page = await jobs.list({ scope, status, limit: 100, ...(cursor ? { cursor } : {}) });
      for (const r of page.jobs) {
        if (++seen > MAX_JOBS) return;
        yield r;
      }
      cursor = page.cursor;
    } while (cursor);
  }
}

export function quarantineJobEffects(d: QuarantineJobsDeps): {
  onPlaced: (r: QuarantineRecord) => Promise<void>;
  onLifted: (r: QuarantineRecord) => Promise<void>;
} {
  const suspendedBy = (r: QuarantineRecord) => `worker quarantine ${r.id}`;
  return {
    async onPlaced(r) {
      const t = r.target;
      if (t.kind === "subject" || t.kind === "key") {
        const cancel = d.jobs.cancel?.bind(d.jobs);
        if (!cancel) return;
        const scope = t.kind === "subject" ? { subject: t.subject } : { kid: t.kid };
        const reason = `cancelled: quarantine ${r.id}`;
        for await (const job of unfinished(d.jobs, scope)) {
          // A subject's listing is by subject; a key's by key: both exactly the target's jobs.
          await d.audit({
            eventType: "job.cancelled",
            agentId: r.placedBy,
            details: { jobId: job.jobId, status: job.status, quarantineId: r.id, by: r.placedBy },
          });
          await cancel(job.jobId, reason);
        }
        return;
      }
      // A worker: its running jobs back to the queue, the keys it used suspended.
      const kids = new Set<string>();
      if (d.jobs.list) {
        let cursor: string | undefined;
        let seen = 0;
        do {
          const page = await d.jobs.list({
            scope: "all",
            status: "running",
            limit: 100,
            ...(cursor ? { cursor } : {}),
          });
          for (const job of page.jobs) {
            // Incident response names a worker by its key id (the evidence's signer).
            if (job.workerId !== t.workerId && job.workerKid !== t.workerId) continue;
            if (job.workerKid) kids.add(job.workerKid);
            const moved = (await d.jobs.requeue?.(job.jobId)) ?? false;
            await d.audit({
              eventType: "job.requeued",
              agentId: r.placedBy,
              details: { jobId: job.jobId, workerId: t.workerId, quarantineId: r.id, moved },
            });
          }
          cursor = page.cursor;
          seen += page.jobs.length;
        } while (cursor && seen < MAX_JOBS);
      }
      const svc = d.service();
      for (const kid of kids)
        await svc?.place({
          target: { kind: "key", kid },
          reason: `suspended: ${suspendedBy(r)} (${r.reason})`.slice(0, 4096),
          ...(r.incidentId !== undefined ? { incidentId: r.incidentId } : {}),
          by: r.placedBy,
        });
    },
    async onLifted(r) {
      // Lifting a worker's quarantine ends the suspension of its keys; revoked keys stay revoked
      // (the registry refuses them whatever the quarantine says).
      if (r.target.kind !== "worker") return;
      const svc = d.service();
      if (!svc) return;
      const mark = `suspended: ${suspendedBy(r)} `;
      let before: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await svc.list({ limit: MAX_QUARANTINE_PAGE, ...(before ? { before } : {}) });
        for (const q of page)
          if (q.liftedAt === undefined && q.reason.startsWith(mark))
            await svc.lift(q.id, r.liftedBy ?? r.placedBy, `worker quarantine ${r.id} lifted`);
        if (page.length < MAX_QUARANTINE_PAGE) break;
        before = page[page.length - 1]?.id;
      }
    },
  };
}
