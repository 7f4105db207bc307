// Scheduled audit retention on real Redis (shared/audit/retention.ts, functions/node/
// audit-retention.ts): events past `audit_retention_days` are archived as a verifiable export,
// then pruned; the remaining chain still verifies, the sweep is audited with the range it
// archived, and two processes sweeping at once prune once.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fileArchive, startAuditRetention } from "../../functions/node/audit-retention";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { RETENTION_EVENT_TYPE, sweepRetention, verifyExport } from "../../shared/audit";
import { loadConfig } from "../../shared/config";
import { redisForFile } from "../support/redis";
import { seedOf, webcryptoSigner } from "./support/crypto";
import { serviceOver } from "./support/harness";

const { redis, prefix } = redisForFile("audit-retention");
const DAY = 86_400_000;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(sub: string) {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = await RedisAuditLog.open({ redis, keyPrefix: `${prefix}${sub}:`, signer });
  return { log, ...serviceOver(log, signer) };
}

function configFor(sub: string, days: number) {
  const dir = mkdtempSync(join(tmpdir(), "sigil-retention-"));
  dirs.push(dir);
  const config = loadConfig({ env: { SYMBIONT_AUDIT_STORAGE: dir } });
  config.security.audit_retention_days = days;
  // The lease lives under the test's prefix, dropped after the file.
  config.redis.prefix = `${prefix}${sub}`;
  return { config, dir };
}

async function appendN(service: { append(e: unknown): Promise<unknown> }, n: number, tag: string) {
  for (let i = 0; i < n; i++)
    await service.append({ eventType: "agent.acted", details: { tag, i } });
}

describe("audit retention sweep (Redis)", () => {
  it("archives and prunes only what is past retention; the rest and the archive verify", async () => {
    const { log, service, keys, verify } = await open("age");
    await appendN(service, 4, "old");
    await sleep(5);
    const cut = Date.now();
    await sleep(5);
    await appendN(service, 3, "new");
    const { config, dir } = configFor("age", 1);
    const r = startAuditRetention({
      audit: service,
      redis,
      config,
      log: quiet,
      // One day after the cut: the four older events are past a one-day retention.
      now: () => cut + DAY,
      firstSweepMs: 3600_000,
    });
    try {
      const out = await r.sweep();
      expect(out).toMatchObject({ outcome: "retained", from: 0, to: 4, eventIndex: 7 });

      // The chain now starts at the cut, verifies, and its newest event records the sweep.
      const head = await log.head();
      expect([head.start, head.size]).toEqual([4, 8]);
      expect(await service.verify()).toMatchObject({ valid: true });
      const event = await service.get(7);
      expect(event.eventType).toBe(RETENTION_EVENT_TYPE);
      expect(event.details).toMatchObject({ from: 0, to: 4, archived: 4, retentionDays: 1 });
      expect(await service.get(4)).toMatchObject({ details: { tag: "new" } });
      await expect(service.get(3)).rejects.toThrow();

      // The archive is an export of [0, 4) that verifies offline, readable by its owner only.
      const files = readdirSync(dir);
      expect(files).toEqual(["default-0-4.ndjson"]);
      const path = join(dir, files[0]!);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const text = readFileSync(path, "utf8");
      expect(text.trim().split("\n")).toHaveLength(5);
      expect(await verifyExport([text], { keys, verify })).toMatchObject({
        valid: true,
        checked: 4,
      });
      // An export of what remains starts at the anchor and verifies too.
      const rest: string[] = [];
      for await (const l of service.export(4, 8)) rest.push(l);
      expect(await verifyExport(rest, { keys, verify })).toMatchObject({ valid: true, checked: 4 });

      // Nothing more is due at the same clock: no second event, no second archive.
      expect(await r.sweep()).toMatchObject({ outcome: "nothing-due" });
      expect((await log.head()).size).toBe(8);
      expect(readdirSync(dir)).toHaveLength(1);
    } finally {
      r.stop();
      await log.close();
    }
  });

  it("prunes nothing, and audits nothing, while every event is within retention", async () => {
    const { log, service } = await open("young");
    await appendN(service, 3, "x");
    const out = await sweepRetention(30, {
      audit: service,
      now: () => Date.now(),
      archive: async () => {
        throw new Error("nothing should be archived");
      },
    });
    expect(out.outcome).toBe("nothing-due");
    expect(await log.head()).toMatchObject({ start: 0, size: 3 });
    await log.close();
  });

  it("a sweep below the enforced minimum (HIPAA's 2190 days) prunes nothing", async () => {
    const { log, service } = await open("floor");
    await appendN(service, 3, "x");
    await expect(
      sweepRetention(30, {
        audit: service,
        now: () => Date.now() + 400 * DAY,
        minimumDays: 2190,
        archive: async () => {
          throw new Error("nothing should be archived");
        },
      }),
    ).rejects.toThrow("below the enforced minimum of 2190");
    expect(await log.head()).toMatchObject({ start: 0, size: 3 });
    await log.close();
  });

  it("a failing archive prunes nothing", async () => {
    const { log, service } = await open("fail");
    await appendN(service, 3, "x");
    await expect(
      sweepRetention(1, {
        audit: service,
        now: () => Date.now() + 2 * DAY,
        archive: async (lines) => {
          for await (const _ of lines) throw new Error("disk full");
        },
      }),
    ).rejects.toThrow("disk full");
    expect(await log.head()).toMatchObject({ start: 0, size: 3 });
    expect(await service.verify()).toMatchObject({ valid: true, checked: 3 });
    await log.close();
  });

  it("two processes sweeping at once archive and prune once, and audit it once", async () => {
    const { log, service } = await open("race");
    await appendN(service, 5, "x");
    await sleep(5);
    const later = Date.now() + DAY;
    const { config, dir } = configFor("race", 1);
    const a = startAuditRetention({ audit: service, redis, config, log: quiet, now: () => later });
    const b = startAuditRetention({ audit: service, redis, config, log: quiet, now: () => later });
    try {
      const outs = await Promise.all([a.sweep(), b.sweep()]);
      expect(outs.filter((o) => o !== "busy" && o.outcome === "retained")).toHaveLength(1);
      const head = await log.head();
      expect([head.start, head.size]).toEqual([5, 6]);
      expect((await service.get(5)).eventType).toBe(RETENTION_EVENT_TYPE);
      expect(readdirSync(dir)).toEqual(["default-0-5.ndjson"]);
      // The lease was released: the next sweep runs, and finds nothing due.
      expect(await a.sweep()).toMatchObject({ outcome: "nothing-due" });
    } finally {
      a.stop();
      b.stop();
      await log.close();
    }
  });

  it("without the lease, a sweep that loses the race reports it and audits nothing", async () => {
    const { log, service } = await open("race-nolease");
    await appendN(service, 5, "x");
    await sleep(5);
    const later = Date.now() + DAY;
    const sweep = () =>
      sweepRetention(1, { audit: service, now: () => later, archive: async (l) => void l });
    const outs = await Promise.all([sweep(), sweep(), sweep()]);
    expect(outs.filter((o) => o.outcome === "retained")).toHaveLength(1);
    const head = await log.head();
    expect([head.start, head.size]).toEqual([5, 6]);
    expect(await service.verify()).toMatchObject({ valid: true });
    await log.close();
  });

  it("a sweep that stopped after archiving archives again beside it; a short export is refused", async () => {
    const { log, service } = await open("rerun");
    await appendN(service, 4, "x");
    await sleep(5);
    const later = Date.now() + DAY;
    const { config, dir } = configFor("rerun", 1);
    // A sweep that archived [0, 4) and stopped before pruning.
    await fileArchive(dir)(service.export(0, 4));
    const r = startAuditRetention({ audit: service, redis, config, log: quiet, now: () => later });
    try {
      expect(await r.sweep()).toMatchObject({ outcome: "retained", from: 0, to: 4 });
      expect(readdirSync(dir).sort()).toEqual(["default-0-4-1.ndjson", "default-0-4.ndjson"]);
      // An export missing events (its range pruned while it was read) is never kept.
      const lines = [];
      for await (const l of service.export(4, 5)) lines.push(l);
      const header = JSON.parse(lines[0]!) as Record<string, unknown>;
      const short = [`${JSON.stringify({ ...header, from: 3 })}\n`, lines[1]!];
      await expect(fileArchive(dir)(short)).rejects.toThrow(/holds 1 of 2 events/);
      expect(readdirSync(dir)).toHaveLength(2);
    } finally {
      r.stop();
      await log.close();
    }
  });
});
