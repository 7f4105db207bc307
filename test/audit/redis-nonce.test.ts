// The Redis log reserving request nonces with their events (AppendOptions.nonce): the event and
// its nonce are stored together or not at all; a used nonce fails the append with `replay` and
// leaves the rest of its batch to be stored; logs that cannot hold nonces refuse the option.
import { describe, expect, it } from "vitest";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { COMMIT, runScript } from "../../functions/node/stores/audit-redis/scripts";
import { RedisReplayCache } from "../../functions/node/stores/replay-redis";
import { AuditError, type AuditLogPort, MemoryAuditLog } from "../../shared/audit";
import { redisForFile } from "../support/redis";
import { seedOf, webcryptoSigner } from "./support/crypto";
import { serviceOver } from "./support/harness";

const { redis, prefix } = redisForFile("audit-nonce");

async function open(sub: string, withNonces = true) {
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const replay = new RedisReplayCache(redis, { prefix: `${prefix}${sub}:` });
  const log = await RedisAuditLog.open({
    redis,
    keyPrefix: `${prefix}${sub}:`,
    signer,
    ...(withNonces ? { nonceKey: (k: string, n: string) => replay.keyFor(k, n) } : {}),
  });
  const service = serviceOver(log, signer).service;
  return { log, service, replay };
}

const event = (n: number) => ({ eventType: "policy.decision", agentId: "a", details: { n } });
const claim = (nonce: string, ttlSeconds = 300) => ({ keyid: "agent-1", nonce, ttlSeconds });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "stored",
    (e: unknown) => (e instanceof AuditError ? e.code : String(e)),
  );

describe("redis audit log: nonces reserved with events", () => {
  it("stores the nonce with the event (its TTL kept); the same nonce again is a replay", async () => {
    const { log, service, replay } = await open("basic");
    expect(service.reservesNonces).toBe(true);
    await service.append(event(1), { nonce: claim("n1", 120) });
    const ttl = await redis.ttl(replay.keyFor("agent-1", "n1"));
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(await codeOf(service.append(event(2), { nonce: claim("n1") }))).toBe("replay");
    // A nonce the replay cache took first (another route) counts as used too, and vice versa.
    expect(await replay.checkAndStore("agent-1", "n2", 60)).toBe(true);
    expect(await codeOf(service.append(event(3), { nonce: claim("n2") }))).toBe("replay");
    expect(await replay.checkAndStore("agent-1", "n1", 60)).toBe(false);
    expect((await log.head()).size).toBe(1);
    await log.close();
  });

  it("a replay in a batch costs only its own append; the chain stays whole", async () => {
    const { log, service } = await open("mixed");
    await service.append(event(0), { nonce: claim("used") });
    // Submitted in one tick, so they share a batch: the replayed entry is not first.
    const outcomes = await Promise.all([
      codeOf(service.append(event(1))),
      codeOf(service.append(event(2), { nonce: claim("used") })),
      codeOf(service.append(event(3))),
      codeOf(service.append(event(4), { nonce: claim("fresh") })),
      codeOf(service.append(event(5), { nonce: claim("fresh") })), // same batch, same nonce
    ]);
    expect(outcomes).toEqual(["stored", "replay", "stored", "stored", "replay"]);
    const head = await log.head();
    expect(head.size).toBe(4);
    const report = await service.verify(0, head.size);
    expect(report.valid).toBe(true);
    const details = (await service.list(0, 10)).events.map((e) => (e.details as { n: number }).n);
    expect(details.sort()).toEqual([0, 1, 3, 4]);
    await log.close();
  });

  it("under concurrency each nonce is stored exactly once", async () => {
    const { log, service } = await open("race");
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        codeOf(service.append(event(i), { nonce: claim(`n${i % 20}`) })),
      ),
    );
    expect(outcomes.filter((o) => o === "stored")).toHaveLength(20);
    expect(outcomes.filter((o) => o === "replay")).toHaveLength(180);
    expect((await log.head()).size).toBe(20);
    await log.close();
  });

  it("a malformed claim is refused at once; the appends beside it are stored", async () => {
    const { log, service } = await open("bad");
    const outcomes = await Promise.all([
      codeOf(service.append(event(1))),
      codeOf(service.append(event(2), { nonce: claim("a", 0) })),
      codeOf(service.append(event(3), { nonce: claim("b", Number.NaN) })),
      codeOf(service.append(event(4), { nonce: { keyid: "", nonce: "c", ttlSeconds: 60 } })),
      codeOf(service.append(event(5), { nonce: claim("") })),
      codeOf(service.append(event(6), { nonce: claim("d") })),
    ]);
    expect(outcomes).toEqual([
      "stored",
      "invalid-input",
      "invalid-input",
      "invalid-input",
      "invalid-input",
      "stored",
    ]);
    expect((await log.head()).size).toBe(2);
    await log.close();
  });

  it("COMMIT refuses nonce keys without their TTLs and writes nothing", async () => {
    const { log } = await open("script");
    const keys = [
      `${prefix}script:audit:{default}:lock`,
      `${prefix}script:audit:{default}:head`,
      `${prefix}script:audit:{default}:events`,
      `${prefix}script:audit:{default}:nodes`,
      `${prefix}script:nonce:x`,
    ];
    const args = ["tok", 0, 1, "h", "", "", 1000, "0", "c", 1, "{}", "", "", "", ""];
    await redis.set(keys[0]!, "tok");
    await expect(runScript(redis, COMMIT, keys, args)).rejects.toThrow(/BATCH malformed/);
    expect(await redis.exists(keys[1]!, keys[2]!, keys[4]!)).toBe(0);
    await log.close();
  });

  it("a log that cannot hold nonces refuses the option rather than drop the check", async () => {
    const { log, service } = await open("none", false);
    expect(service.reservesNonces).toBe(false);
    expect(await codeOf(service.append(event(1), { nonce: claim("x") }))).toBe("unavailable");
    expect((await log.head()).size).toBe(0);
    await log.close();

    const signer = await webcryptoSigner(seedOf(7), "audit-1");
    const memory = new MemoryAuditLog({ signer });
    expect((memory as AuditLogPort).reservesNonces).toBeFalsy();
    expect(await codeOf(memory.append(event(1), { nonce: claim("x") }))).toBe("unavailable");
  });
});
