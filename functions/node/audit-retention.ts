// The Node API's audit retention (docs/audit.md "Retention"): the sweep of shared/audit/retention.ts
// on a timer, with `[security] audit_retention_days`. Pruned events are first written as an NDJSON
// export under `[security] audit_storage_path` (fsynced, then linked into place, never over an existing archive), which
// `scripts/audit-verify.ts` verifies offline. A Redis lease lets one API process sweep at a time.
import { randomUUID } from "node:crypto";
import { link, mkdir, open, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Redis } from "ioredis";
import { type AuditService, type RetentionSweep, sweepRetention } from "../../shared/audit";
import type { SigilConfig } from "../../shared/config";
import type { Logger } from "../../shared/log";

/** How often a process tries to sweep; retention is in days, so hourly is plenty. */
export const RETENTION_SWEEP_MS = 3600_000;
/** The first sweep waits a minute after start, so it never competes with start-up. */
const FIRST_SWEEP_MS = 60_000;
/** Longest a sweep may hold the lease before another process may take it over. */
const LEASE_MS = 15 * 60_000;

export interface AuditRetentionOptions {
  audit: Pick<AuditService, "retainOlderThan" | "append" | "log">;
  redis: Redis;
  config: Pick<SigilConfig, "security" | "redis" | "audit">;
  log: Logger;
  now?: () => number;
  /** The enforced frameworks' retention floor (ComplianceDeps.retentionFloorDays). */
  minimumDays?: number;
  intervalMs?: number;
  firstSweepMs?: number;
}

export interface AuditRetention {
  /** One sweep now; "busy" when another process holds the lease. */
  sweep(): Promise<RetentionSweep | "busy">;
  stop(): void;
}

const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`;

/**
 * Writes an export stream to `<dir>/<chain>-<from>-<to>.ndjson` (`-<n>` added if that name is
 * taken: a sweep that stopped between archiving and pruning archives the range again). Durable
 * when it resolves; refuses an export with fewer events than its header names (a range pruned
 * under a sweep that lost a race) and never replaces an existing archive.
 */
export function fileArchive(dir: string) {
  return async (lines: AsyncIterable<string> | Iterable<string>): Promise<void> => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.archive-${randomUUID()}.tmp`);
    const fh = await open(tmp, "wx", 0o600);
    try {
      let header: { chain: string; from: number; to: number } | undefined;
      let events = 0;
      try {
        for await (const line of lines) {
          if (header === undefined) {
            // Only the header is parsed here; the events are checked by audit-verify.
            const h = JSON.parse(line) as { chain?: unknown; from?: unknown; to?: unknown };
            if (typeof h.from !== "number" || typeof h.to !== "number")
              throw new Error("audit export has no header");
            header = { chain: String(h.chain ?? "chain"), from: h.from, to: h.to };
          } else events++;
          await fh.write(line);
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (header === undefined) throw new Error("audit export was empty");
      if (events !== header.to - header.from)
        throw new Error(`audit export holds ${events} of ${header.to - header.from} events`);
      const base = `${header.chain.replace(/[^A-Za-z0-9_-]/g, "_")}-${header.from}-${header.to}`;
      for (let n = 0; ; n++) {
        try {
          await link(tmp, join(dir, n === 0 ? `${base}.ndjson` : `${base}-${n}.ndjson`));
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST" || n >= 100) throw e;
        }
      }
      const d = await open(dir, "r");
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  };
}

export function startAuditRetention(o: AuditRetentionOptions): AuditRetention {
  const days = o.config.security.audit_retention_days;
  const lease = `${o.config.redis.prefix}:audit:${o.config.audit.chain}:retention-lease`;
  const archive = fileArchive(resolve(o.config.security.audit_storage_path));
  const now = o.now ?? Date.now;

  async function sweep(): Promise<RetentionSweep | "busy"> {
    const token = randomUUID();
    if ((await o.redis.set(lease, token, "PX", LEASE_MS, "NX")) !== "OK") return "busy";
    try {
      const r = await sweepRetention(days, {
        audit: o.audit,
        now,
        archive,
        ...(o.minimumDays !== undefined ? { minimumDays: o.minimumDays } : {}),
      });
      if (r.outcome === "retained")
        o.log.info("audit events past retention archived and pruned", {
          ...r,
          retentionDays: days,
        });
      return r;
    } finally {
      await o.redis.eval(RELEASE, 1, lease, token).catch(() => undefined);
    }
  }
  const run = () =>
    void sweep().catch((e: unknown) =>
      o.log.error("audit retention sweep failed", {
        err: e instanceof Error ? e.message : String(e),
      }),
    );
  let interval: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    run();
    interval = setInterval(run, o.intervalMs ?? RETENTION_SWEEP_MS);
    interval.unref();
  }, o.firstSweepMs ?? FIRST_SWEEP_MS);
  first.unref();
  return {
    sweep,
    stop() {
      clearTimeout(first);
      if (interval) clearInterval(interval);
    },
  };
}
