// The Redis sequencer's fencing and failure behaviour: a write without the lock, or sealed on a
// stale head, is refused; a lock held by a dead leader delays appends but loses none; an append
// that cannot be sequenced in time is rejected as definitely not appended.
import { describe, expect, it } from "vitest";
import { parseStored, RedisAuditLog, storedValue } from "../../functions/node/stores/audit-redis";
import { COMMIT, commitArgs, runScript } from "../../functions/node/stores/audit-redis/scripts";
import {
  admitAppend,
  CompactRange,
  EventIdClock,
  emptyChainState,
  FIELD_SUMS_LENGTH,
  sealBatch,
} from "../../shared/audit";
import { redisForFile } from "../support/redis";
import { seedOf, webcryptoSigner } from "./support/crypto";
import { serviceOver } from "./support/harness";

const { redis, prefix } = redisForFile("audit-seq");

async function open(sub: string, extra: Partial<Parameters<typeof RedisAuditLog.open>[0]> = {}) {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = await RedisAuditLog.open({
    redis,
    keyPrefix: `${prefix}${sub}:`,
    signer,
    leaseMs: 400,
    ...extra,
  });
  const service = serviceOver(log, signer).service;
  return { log, service, signer };
}

describe("redis audit sequencer", () => {
  it("reports its durability setting (AOF on here)", async () => {
    const { log } = await open("dur");
    expect(log.durability?.appendonly).toBe("yes");
    await log.close();
  });

  it("refuses a batch from a process without the lock, or sealed on a stale head", async () => {
    const { log, service, signer } = await open("fence");
    await service.append({ eventType: "agent.created", details: {} });
    const state = { ...emptyChainState(), range: CompactRange.empty() };
    const sealed = await sealBatch(
      state,
      [admitAppend({ eventType: "agent.created", details: { forked: true } })],
      {
        chain: "default",
        signer,
        now: Date.now,
        ids: new EventIdClock(),
      },
    );
    const k = log.keys;
    const keys = [k.lock, k.head, k.ev, k.nodes];
    const args = (token: string, expected: number) =>
      commitArgs(
        { token, leaseMs: 1000, release: true, channel: "ch" },
        expected,
        sealed,
        storedValue,
      );
    // Deposed leader: its token is not the lock's.
    await redis.set(k.lock, "someone-else", "PX", 5000);
    await expect(runScript(redis, COMMIT, keys, args("deposed", 1))).rejects.toThrow(
      /FENCED sequencer lock lost/,
    );
    // Right token, but sealed on a head that has moved (size 0 vs 1): it would fork index 0.
    await redis.set(k.lock, "mine", "PX", 5000);
    await expect(runScript(redis, COMMIT, keys, args("mine", 0))).rejects.toThrow(
      /FENCED chain head moved/,
    );
    await redis.del(k.lock);
    expect(await service.verify()).toEqual({ valid: true, checked: 1 });
    expect((await service.get(0)).details).toEqual({});
    await log.close();
  });

  it("an append that cannot get the lock in time is rejected as not appended", async () => {
    const { log, service } = await open("timeout");
    await redis.set(log.keys.lock, "stuck-leader", "PX", 60_000);
    await expect(
      service.append({ eventType: "agent.created", details: {} }, { timeoutMs: 300 }),
    ).rejects.toMatchObject({
      code: "timeout",
    });
    expect((await log.head()).size).toBe(0);
    await redis.del(log.keys.lock);
    const ok = await service.append({ eventType: "agent.created", details: {} });
    expect(ok.index).toBe(0);
    await log.close();
  });

  it("a dead leader's lease runs out and waiting appends go through, in order", async () => {
    const { log, service } = await open("dead");
    await service.append({ eventType: "agent.created", details: { n: 0 } });
    await redis.set(log.keys.lock, "dead-leader", "PX", 500);
    const acks = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        service.append({ eventType: "agent.created", details: { n: i + 1 } }),
      ),
    );
    expect(acks.map((a) => a.index).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(await service.verify()).toEqual({ valid: true, checked: 21 });
    await log.close();
  });

  it("two adapters in one process share the chain without forking it", async () => {
    const a = await open("two");
    const b = await open("two");
    const acks = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        (i % 2 ? a.service : b.service).append({ eventType: "message.routed", details: { i } }),
      ),
    );
    expect(new Set(acks.map((x) => x.index)).size).toBe(300);
    expect(await a.service.verify()).toEqual({ valid: true, checked: 300 });
    await a.log.close();
    await b.log.close();
  });

  it("stores checksums and JSON in one field; a value written without checksums still reads and verifies", async () => {
    const { log, service } = await open("format");
    for (let i = 0; i < 3; i++)
      await service.append({ eventType: "agent.created", details: { i } });
    const stored = (await redis.hget(log.keys.ev, "1"))!;
    const parsed = parseStored(stored);
    expect(parsed.sums).toHaveLength(FIELD_SUMS_LENGTH);
    expect(JSON.parse(parsed.json).index).toBe(1);
    expect(storedValue(parsed)).toBe(stored);
    // The layout before checksums shared the field: JSON alone.
    await redis.hset(log.keys.ev, "1", parsed.json);
    expect((await log.read(1, 2))[0]).toEqual({ json: parsed.json });
    expect(await service.verify()).toEqual({ valid: true, checked: 3 });
    // Garbled checksums cost only the diagnostic: the JSON is still what is read and verified.
    await redis.hset(log.keys.ev, "1", `${"z".repeat(FIELD_SUMS_LENGTH)}${parsed.json}`);
    expect(await service.verify()).toEqual({ valid: true, checked: 3 });
    await log.close();
  });

  it("close rejects queued appends instead of leaving callers waiting", async () => {
    const { log, service } = await open("close");
    await redis.set(log.keys.lock, "stuck", "PX", 60_000);
    const pending = service
      .append({ eventType: "agent.created", details: {} })
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await log.close();
    expect(await pending).toMatchObject({ code: "closed" });
    await redis.del(log.keys.lock);
  });

  it("appends made by separate callbacks of one event-loop turn share one COMMIT", async () => {
    // Two requests whose signature checks finish in the same turn append from two callbacks; the
    // leader must not seal the first alone the moment it arrives.
    const conn = redis.duplicate();
    const sizes: number[] = [];
    const call = conn.callBuffer.bind(conn) as (cmd: string, args: unknown[]) => Promise<unknown>;
    (conn as unknown as { callBuffer: typeof call }).callBuffer = (cmd, args) => {
      // EVALSHA sha numkeys ...keys ...argv; ARGV[10] is the batch's event count.
      if (args[0] === COMMIT.sha) sizes.push(Number(args.slice(2 + Number(args[1]))[9]));
      return call(cmd, args);
    };
    const { log, service } = await open("gather", { redis: conn });
    await service.append({ eventType: "agent.created", details: { n: 0 } }); // the leader is now idle
    const acks = await new Promise<Awaited<ReturnType<typeof service.append>>[]>((resolve) => {
      const pending: ReturnType<typeof service.append>[] = [];
      setImmediate(() =>
        pending.push(service.append({ eventType: "agent.created", details: { n: 1 } })),
      );
      setImmediate(() => {
        pending.push(service.append({ eventType: "agent.created", details: { n: 2 } }));
        resolve(Promise.all(pending));
      });
    });
    expect(acks.map((a) => a.index)).toEqual([1, 2]);
    expect(sizes).toEqual([1, 2]);
    expect((await service.verify()).valid).toBe(true);
    await log.close();
    conn.disconnect();
  });

  it("an append that arrives while a batch commits is sent before that batch's reply", async () => {
    // The log's own connection, observed: each COMMIT's send, and its reply held back 50 ms, so
    // the second append has all the time it needs to go out while the first is unanswered.
    const conn = redis.duplicate();
    const seen: string[] = [];
    const call = conn.callBuffer.bind(conn) as (cmd: string, args: unknown[]) => Promise<unknown>;
    (conn as unknown as { callBuffer: typeof call }).callBuffer = (cmd, args) => {
      if (args[0] !== COMMIT.sha) return call(cmd, args);
      const n = seen.filter((x) => x.startsWith("send")).length + 1;
      seen.push(`send ${n}`);
      return call(cmd, args).then(async (r) => {
        await new Promise((res) => setTimeout(res, 50));
        seen.push(`reply ${n}`);
        return r;
      });
    };
    const { log, service } = await open("overlap", { redis: conn });
    const first = service.append({ eventType: "agent.created", details: { n: 1 } });
    while (seen.length === 0) await new Promise((r) => setImmediate(r));
    const second = service.append({ eventType: "agent.created", details: { n: 2 } });
    const [a, b] = await Promise.all([first, second]);
    expect(seen).toEqual(["send 1", "send 2", "reply 1", "reply 2"]);
    expect([a.index, b.index]).toEqual([0, 1]);
    expect(b.previousHash).toBe(a.eventHash);
    expect((await service.verify()).valid).toBe(true);
    await log.close();
    conn.disconnect();
  });
});
