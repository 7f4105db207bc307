// [audit] durability = "replicated": an append is acknowledged only once WAIT counts
// min_replicas replicas, so a promoted replica holds every acknowledged event; and the fence
// against a demoted primary: after the replica is promoted, the old primary acknowledges nothing,
// while under "fsync" it still would (what a failover can lose, counted, not guessed).
// Own primary + replica (promotion by hand, so the demoted primary stays reachable).
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { AuditError, type AuditEvent } from "../../shared/audit";
import { seedOf, webcryptoSigner } from "../audit/support/crypto";
import { serviceOver } from "../audit/support/harness";
import { type SentinelSet, startSentinelSet, waitFor } from "./support/sentinel";

let set: SentinelSet;
let primary: Redis;
let replica: Redis;
beforeAll(async () => {
  set = await startSentinelSet({ sentinels: 0 });
  primary = set.admin(set.primary.port);
  replica = set.admin(set.replica.port);
}, 60_000);
afterAll(async () => {
  await set?.stop();
});

const input = (i: number) => ({
  eventType: "job.started",
  agentId: "durability",
  details: { i },
});

async function open(redis: Redis, durability: "fsync" | "replicated", keyPrefix: string) {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = await RedisAuditLog.open({
    redis,
    keyPrefix,
    signer,
    durability,
    minReplicas: 1,
    replicaTimeoutMs: 300,
  });
  return { log, signer };
}

/** Appends n at once; the acknowledged events and the refusals. */
async function appendAll(log: RedisAuditLog, n: number, from = 0) {
  const r = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => log.append(input(from + i))),
  );
  const acked = r.flatMap((x) => (x.status === "fulfilled" ? [x.value] : []));
  const refused = r.flatMap((x) => (x.status === "rejected" ? [x.reason as AuditError] : []));
  return { acked, refused };
}

async function verifyOn(redis: Redis, keyPrefix: string, acked: AuditEvent[]) {
  const { log, signer } = await open(redis, "fsync", keyPrefix);
  try {
    const head = await log.head();
    const stored = await log.read(0, head.size);
    const indexes = new Set<number>();
    for (const r of stored) indexes.add((JSON.parse(r!.json) as AuditEvent).index);
    expect(indexes.size).toBe(head.size); // no two events share an index
    for (const e of acked)
      expect((JSON.parse(stored[e.index]!.json) as AuditEvent).eventId, `ack ${e.index}`).toBe(
        e.eventId,
      );
    expect(await serviceOver(log, signer).service.verify()).toEqual({
      valid: true,
      checked: head.size,
    });
    return head.size;
  } finally {
    await log.close();
  }
}

describe("[audit] durability", () => {
  it("replicated: 64 concurrent appends acknowledged only once the replica has them; a demoted primary acknowledges nothing", async () => {
    const prefix = "dur-rep:";
    const { log } = await open(primary, "replicated", prefix);
    const first = await appendAll(log, 64);
    expect(first.refused).toEqual([]);
    expect(first.acked).toHaveLength(64);
    // Every acknowledged event is already on the replica (no need to wait for it to catch up).
    const onReplica = await replica.hlen(log.keys.ev);
    expect(onReplica).toBe(64);

    // Promote the replica by hand; the old primary still thinks it is primary (a partition).
    await replica.call("REPLICAOF", "NO", "ONE");
    await waitFor("old primary to lose its replica", async () =>
      (await primary.info("replication")).includes("connected_slaves:0"),
    );
    const late = await appendAll(log, 16, 64);
    expect(late.acked).toEqual([]); // the fence: nothing the old primary takes is acknowledged
    expect(late.refused).toHaveLength(16);
    for (const e of late.refused) {
      expect(e).toBeInstanceOf(AuditError);
      expect(e.code).toBe("outcome-unknown");
      expect(e.message).toMatch(/min_replicas/);
    }
    await log.close();

    // The new primary's chain: every acknowledged event, verifies, continues without a fork.
    const { log: next } = await open(replica, "fsync", prefix);
    const more = await appendAll(next, 8, 100);
    expect(more.refused).toEqual([]);
    expect(more.acked.map((e) => e.index)).toEqual([64, 65, 66, 67, 68, 69, 70, 71]);
    await next.close();
    expect(await verifyOn(replica, prefix, [...first.acked, ...more.acked])).toBe(72);
    // Put the pair back for the next test.
    await primary.call("REPLICAOF", "127.0.0.1", String(set.replica.port));
    await waitFor("old primary rejoined as a replica", async () =>
      (await primary.info("replication")).includes("master_link_status:up"),
    );
    // Its unacknowledged tail was discarded: it now holds the new primary's chain.
    expect(await verifyOn(primary, prefix, [...first.acked, ...more.acked])).toBe(72);
  }, 60_000);

  it("fsync: the same partition acknowledges appends the promoted replica never gets (the loss counted)", async () => {
    // After the previous test the replica-turned-primary is `replica`, with `primary` following it.
    const prefix = "dur-fsync:";
    const [p, r] = [replica, primary];
    const { log } = await open(p, "fsync", prefix);
    const first = await appendAll(log, 64);
    expect(first.refused).toEqual([]);
    await waitFor("replica caught up", async () => (await r.hlen(log.keys.ev)) === 64);
    await r.call("REPLICAOF", "NO", "ONE");
    await waitFor("primary lost its replica", async () =>
      (await p.info("replication")).includes("connected_slaves:0"),
    );
    const late = await appendAll(log, 16, 64);
    // Acknowledged, yet only on the isolated old primary: a failover loses exactly these.
    expect(late.acked).toHaveLength(16);
    expect(await r.hlen(log.keys.ev)).toBe(64);
    await log.close();
  }, 60_000);
});
