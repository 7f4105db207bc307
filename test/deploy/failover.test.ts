// kill -9 of the Redis primary while 64 appenders run through three sequencers (each its own
// connection set and lock token, as three API processes have): Sentinel promotes the replica,
// every client follows, and
// - durability = "replicated": no acknowledged event is missing, the chain and the Merkle tree
//   verify, no two events share an index;
// - durability = "fsync": the same accounting, documenting what can be lost (acknowledged events
//   the replica had not received), counted rather than asserted to be zero.
// Own primary + replica + three Sentinels (test/deploy/support/sentinel.ts).
// API processes over HTTP, workers and a job stream through the same kill: failover-stack.test.ts.
import type { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { connectRedis } from "../../platform/node/redis";
import type { AuditEvent } from "../../shared/audit";
import { loadConfig } from "../../shared/config";
import { seedOf, webcryptoSigner } from "../audit/support/crypto";
import { serviceOver } from "../audit/support/harness";
import { type SentinelSet, startSentinelSet, waitFor } from "./support/sentinel";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let set: SentinelSet | undefined;
afterEach(async () => {
  await set?.stop();
  set = undefined;
});

interface Run {
  acked: AuditEvent[];
  /** Acknowledged after the kill: the first one's delay is the failover pause. */
  ackedAfterKill: number;
  pauseMs: number;
  refused: number;
  /** Acknowledged events not in the promoted replica's chain. */
  missing: AuditEvent[];
  size: number;
}

/** One full run: 64 appenders, kill -9 of the primary, the accounting on the promoted replica. */
async function failoverRun(durability: "fsync" | "replicated"): Promise<Run> {
  // Two replicas: after the promotion the new primary still has one for WAIT to count (with one,
  // `replicated` rightly acknowledges nothing until the old primary is back as a replica).
  set = await startSentinelSet({ downAfterMs: 1000, secondReplica: true });
  const s = set;
  const cfg = loadConfig({ env: { SIGIL_REDIS_SENTINELS: JSON.stringify(s.sentinelAddrs) } });
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const conns: Redis[] = [];
  const logs: RedisAuditLog[] = [];
  for (let i = 0; i < 3; i++) {
    const c = connectRedis(cfg.redis, { maxRetriesPerRequest: 2 });
    c.on("error", () => undefined);
    conns.push(c);
    logs.push(
      await RedisAuditLog.open({
        redis: c,
        keyPrefix: "fo:",
        signer,
        durability,
        minReplicas: 1,
        replicaTimeoutMs: 500,
        timeoutMs: 3000,
      }),
    );
  }
  const acked: AuditEvent[] = [];
  let refused = 0;
  let killedAt = 0;
  let firstAfter = 0;
  let ackedAfterKill = 0;
  let stop = false;
  let n = 0;
  const appender = async (k: number) => {
    const log = logs[k % logs.length]!;
    while (!stop) {
      try {
        const e = await log.append({
          eventType: "job.started",
          agentId: `a${k}`,
          details: { i: n++ },
        });
        acked.push(e);
        if (killedAt && Date.now() > killedAt) {
          ackedAfterKill++;
          firstAfter ||= Date.now();
        }
      } catch {
        refused++;
        await sleep(20);
      }
    }
  };
  const running = Array.from({ length: 64 }, (_, k) => appender(k));
  try {
    await waitFor("appends before the kill", async () => acked.length >= 500, 60_000);
    s.primary.proc.kill("SIGKILL");
    killedAt = Date.now();
    await waitFor("promotion", async () => (await s.currentPrimaryPort()) !== s.primary.port);
    await waitFor("appends after the failover", async () => ackedAfterKill >= 500, 60_000);
  } finally {
    stop = true;
    await Promise.all(running);
    for (const l of logs) await l.close();
  }
  // Read the surviving chain on the promoted replica.
  const survivor = s.admin(await s.currentPrimaryPort());
  const log = await RedisAuditLog.open({ redis: survivor, keyPrefix: "fo:", signer });
  try {
    const head = await log.head();
    const stored = await log.read(0, head.size);
    const byIndex = new Map<number, string>();
    stored.forEach((r, i) => {
      expect(r, `index ${i}`).toBeDefined();
      const e = JSON.parse(r!.json) as AuditEvent;
      expect(e.index).toBe(i);
      byIndex.set(i, e.eventId);
    });
    // No two acknowledged events share an index, and every index holds one event.
    expect(new Set(acked.map((e) => e.index)).size).toBe(acked.length);
    expect(new Set(byIndex.values()).size).toBe(head.size);
    const missing = acked.filter((e) => byIndex.get(e.index) !== e.eventId);
    const service = serviceOver(log, signer).service;
    expect(await service.verify()).toEqual({ valid: true, checked: head.size });
    const cp = await service.checkpoint();
    expect(cp.treeSize).toBe(head.size);
    for (const c of conns) c.disconnect();
    return {
      acked,
      ackedAfterKill,
      pauseMs: firstAfter - killedAt,
      refused,
      missing,
      size: head.size,
    };
  } finally {
    await log.close();
  }
}

describe("Redis primary kill -9 under 64 appenders (Sentinel failover)", () => {
  it("replicated: no acknowledged event missing; chain and Merkle tree verify", async () => {
    const r = await failoverRun("replicated");
    console.log(
      `[failover replicated] acked ${r.acked.length} (${r.ackedAfterKill} after the kill), refused ${r.refused}, pause ${r.pauseMs} ms, missing ${r.missing.length}`,
    );
    expect(r.ackedAfterKill).toBeGreaterThanOrEqual(500);
    expect(r.missing).toEqual([]);
  }, 150_000);

  it("fsync: the same run, the acknowledged events a failover can lose counted", async () => {
    const r = await failoverRun("fsync");
    console.log(
      `[failover fsync] acked ${r.acked.length} (${r.ackedAfterKill} after the kill), refused ${r.refused}, pause ${r.pauseMs} ms, missing ${r.missing.length}`,
    );
    expect(r.ackedAfterKill).toBeGreaterThanOrEqual(500);
    // Whatever is missing was acknowledged before the kill (the replica's lag at that moment) and
    // sits at the end of the old chain, past the promoted replica's head; nothing later is lost.
    for (const e of r.missing) expect(e.index).toBeGreaterThanOrEqual(r.size - r.ackedAfterKill);
  }, 150_000);
});
