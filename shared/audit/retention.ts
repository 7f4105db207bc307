// Scheduled retention (docs/audit.md "Retention"): every event older than `[security]
// audit_retention_days` is archived through the runtime's sink and then pruned. The chain keeps a
// signed anchor at the cut, so what remains still verifies, and the sweep is itself audited: an
// `audit.retained` event names the range it archived and the anchor it left.
import { type AuditService, retentionCutoff } from "./service";

export const RETENTION_EVENT_TYPE = "audit.retained";

export interface RetentionSweepPorts {
  audit: Pick<AuditService, "retainOlderThan" | "append" | "log">;
  /** The clock the cutoff is measured on (ms since epoch). */
  now: () => number;
  /**
   * Stores the export of the range (NDJSON, header first: `scripts/audit-verify.ts` checks it);
   * must have stored it durably when it resolves, since the range is pruned next.
   */
  archive: (lines: AsyncIterable<string>) => Promise<void>;
  /**
   * The least retention the deployment's enforced compliance frameworks allow (HIPAA: 2190 days;
   * docs/compliance.md "Retention"): a sweep with less refuses to prune anything.
   */
  minimumDays?: number;
}

export type RetentionSweep =
  /** No event is older than the cutoff. */
  | { outcome: "nothing-due"; cutoff: string }
  /** [from, to) was archived and pruned; `eventIndex` is the `audit.retained` event's. */
  | {
      outcome: "retained";
      cutoff: string;
      from: number;
      to: number;
      eventIndex: number;
    }
  /** Another process pruned the same range first. */
  | { outcome: "raced"; cutoff: string; detail: string };

/**
 * One sweep. Safe to run from several processes at once: the log prunes a range at most once, and
 * a sweep that loses the race reports it rather than auditing a retention it did not do.
 */
export async function sweepRetention(
  retentionDays: number,
  ports: RetentionSweepPorts,
): Promise<RetentionSweep> {
  if (retentionDays < (ports.minimumDays ?? 0))
    throw new RangeError(
      `retention of ${retentionDays} days is below the enforced minimum of ${ports.minimumDays}: nothing pruned`,
    );
  const cutoffMs = retentionCutoff(retentionDays, ports.now());
  const cutoff = new Date(cutoffMs).toISOString();
  const start = (await ports.audit.log.head()).start;
  let done: Awaited<ReturnType<AuditService["retainOlderThan"]>>;
  try {
    done = await ports.audit.retainOlderThan(cutoffMs, ports.archive);
  } catch (e) {
    // The range went away under this sweep (another process pruned it): not an error, and not
    // this sweep's retention to audit. Anything else (a missing event in place) is.
    if ((await ports.audit.log.head()).start > start)
      return { outcome: "raced", cutoff, detail: e instanceof Error ? e.message : String(e) };
    throw e;
  }
  const anchor = done.anchor;
  if (done.archived === 0 || !anchor) return { outcome: "nothing-due", cutoff };
  const from = anchor.size - done.archived;
  const event = await ports.audit.append({
    eventType: RETENTION_EVENT_TYPE,
    agentId: "system",
    details: {
      from,
      to: anchor.size,
      archived: done.archived,
      retentionDays,
      cutoff,
      // What the remaining chain continues from: verifiable against the signed checkpoint.
      anchor: {
        treeSize: anchor.checkpoint.treeSize,
        rootHash: anchor.checkpoint.rootHash,
        eventHash: anchor.eventHash,
        timestamp: anchor.timestamp,
      },
    },
  });
  return { outcome: "retained", cutoff, from, to: anchor.size, eventIndex: event.index };
}
