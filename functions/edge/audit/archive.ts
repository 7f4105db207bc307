// The edge's audit archive sink (docs/audit.md "Retention"): the NDJSON export of each pruned
// prefix, stored in the ArchiveObject (./archive-object.ts) in parts of at most PART_CHARS, and
// committed under its name before the prune. `scripts/audit-verify.ts` / `sigil audit
// verify-export` check an archive once its parts are joined.
import {
  type RetentionSweep,
  type RetentionSweepPorts,
  sweepRetention,
} from "../../../shared/audit";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { ArchiveObject } from "./archive-object";

/** Characters per stored part. */
const PART_CHARS = 4 * 1024 * 1024;

/**
 * The archive sink of sweepRetention on the edge: stores the export as `<chain>-<from>-<to>`,
 * refusing one with fewer events than its header names (a range pruned under a racing sweep).
 */
export function objectArchive(object: StubSource<ArchiveObject>) {
  return async (lines: AsyncIterable<string>): Promise<void> => {
    let header: { chain: string; from: number; to: number } | undefined;
    let events = 0;
    let part = 0;
    let buf = "";
    const flush = async () => {
      unwrap(await object().stage(part++, buf));
      buf = "";
    };
    for await (const line of lines) {
      if (header === undefined) {
        const h = JSON.parse(line) as { chain?: unknown; from?: unknown; to?: unknown };
        if (typeof h.from !== "number" || typeof h.to !== "number")
          throw new Error("audit export has no header");
        header = { chain: String(h.chain ?? "chain"), from: h.from, to: h.to };
      } else events++;
      buf += line;
      if (buf.length >= PART_CHARS) await flush();
    }
    if (header === undefined) throw new Error("audit export was empty");
    if (buf.length > 0 || part === 0) await flush();
    if (events !== header.to - header.from)
      throw new Error(`audit export holds ${events} of ${header.to - header.from} events`);
    const base = `${header.chain.replace(/[^A-Za-z0-9_-]/g, "_")}-${header.from}-${header.to}`;
    unwrap(await object().commit(base, part));
  };
}

/** One edge sweep (the cron trigger's work): the shared sweep with the object archive. */
export function edgeRetentionSweep(
  retentionDays: number,
  ports: Omit<RetentionSweepPorts, "archive"> & { archive: StubSource<ArchiveObject> },
): Promise<RetentionSweep> {
  return sweepRetention(retentionDays, { ...ports, archive: objectArchive(ports.archive) });
}
