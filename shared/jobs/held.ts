// Jobs that wait for approval (docs/governance.md "Approvals"): a held job's frozen, signed envelope
// is queued exactly once when its approval is approved, and the job ends `rejected` when it is
// denied or expires. There is no timer: this runs right after a decision, whenever a held job is
// read, and from a periodic sweep on Node (functions/node/jobs/held-sweep.ts), in any number of
// processes at once. Each step is a compare-and-set (the approval's redemption, the record's
// awaiting_approval → queued | rejected), so each transition is made, and audited, by one caller.
import { type ApprovalRecord, type ApprovalService, statusAt } from "../approvals";
import type { JobRecord, JobsBackend } from "./backend";
import type { JobAuditEvent } from "./submit";

export interface HeldJobPorts {
  backend: Pick<JobsBackend, "get" | "release" | "reject">;
  approvals: ApprovalService;
  audit: (e: JobAuditEvent) => Promise<void>;
  now: () => number;
}

export type HeldResolution =
  /** Still waiting for an answer. */
  | "waiting"
  | "released"
  | "rejected"
  /** Not a held job (any more), or another caller made the transition. */
  | "none";

/**
 * Moves a held job on if its approval is answered. With `confirm`, a job released before but
 * never started is queued again (a no-op when its queue add landed): what the sweep does for a
 * release whose process died between the compare-and-set and the add.
 */
export async function resolveHeldJob(
  jobId: string,
  ports: HeldJobPorts,
  opts: { confirm?: boolean } = {},
): Promise<HeldResolution> {
  const job = await ports.backend.get(jobId);
  if (opts.confirm && job?.status !== "awaiting_approval") {
    // Not held (any more): a release that may not have reached the queue is repeated (the
    // compare-and-set lets only a released, never started job through), else it is forgotten.
    await ports.backend.release(jobId);
    return "none";
  }
  if (!job || job.approvalId === null || job.status !== "awaiting_approval") return "none";
  const approval = await ports.approvals.get(job.approvalId);
  if (!approval) {
    // Not in this process's store (an edge's approval, read by a Node sweep) or past retention:
    // waits for a process that can read it, until its envelope can no longer run anyway.
    if (ports.now() < Date.parse(job.expiresAt)) return "waiting";
    return reject(job, ports, `approval ${job.approvalId} was not answered before the job expired`);
  }
  if (approval.request.jobId !== jobId)
    return reject(job, ports, `approval ${approval.id} is not this job's`);
  const status = statusAt(approval, ports.now());
  switch (status) {
    case "pending":
      return "waiting";
    case "denied":
      return reject(
        job,
        ports,
        `approval ${approval.id} was denied by ${approval.decision?.by.subject ?? "an approver"}: ${approval.decision?.reason ?? ""}`,
      );
    case "expired":
      return reject(job, ports, `approval ${approval.id} expired unanswered`);
    case "approved": {
      // Spent once, for this job (approval.redeemed); a concurrent caller's redemption is as good.
      const out = await ports.approvals.redeem(approval.id, approval.request, jobId);
      if (!out.ok && out.refusal.code !== "already-redeemed") {
        return reject(job, ports, `approval ${approval.id} refused: ${out.refusal.detail}`);
      }
      return release(job, approval, ports);
    }
    case "redeemed":
      // Redeemed by a caller that died before releasing: the redemption was for this job.
      if (approval.redeemed?.decisionId !== jobId)
        return reject(job, ports, `approval ${approval.id} was spent elsewhere`);
      return release(job, approval, ports);
  }
}

async function release(
  job: JobRecord,
  approval: ApprovalRecord,
  ports: HeldJobPorts,
): Promise<HeldResolution> {
  const out = await ports.backend.release(job.jobId);
  if (out.outcome !== "released") return "none";
  await ports.audit({
    eventType: "job.released",
    agentId: approval.decision?.by.subject ?? "system",
    details: {
      jobId: job.jobId,
      approvalId: approval.id,
      envelopeHash: job.envelopeHash,
      approvedBy: approval.decision?.by ?? null,
    },
  });
  return "released";
}

async function reject(
  job: JobRecord,
  ports: HeldJobPorts,
  reason: string,
): Promise<HeldResolution> {
  const out = await ports.backend.reject(job.jobId, reason);
  if (out.outcome !== "rejected") return "none";
  await ports.audit({
    eventType: "job.rejected",
    agentId: "system",
    details: {
      jobId: job.jobId,
      approvalId: job.approvalId,
      reason,
      envelopeHash: job.envelopeHash,
    },
  });
  return "rejected";
}
