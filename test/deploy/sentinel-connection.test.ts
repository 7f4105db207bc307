// [redis] sentinels: every kind of connection the Node processes hold (commands, pub/sub, a
// blocking pop, BullMQ's producer and worker) follows a `kill -9` of the primary to the replica
// Sentinel promotes. Runs its own Redis + Sentinels (test/deploy/support/sentinel.ts).
import { Queue, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectRedis, redisOptions } from "../../platform/node/redis";
import { loadConfig } from "../../shared/config";
import { type SentinelSet, startSentinelSet, waitFor } from "./support/sentinel";

let set: SentinelSet;
beforeAll(async () => {
  set = await startSentinelSet();
}, 60_000);
afterAll(async () => {
  await set?.stop();
});

describe("[redis] sentinels", () => {
  it("config: sentinels, master_name and credentials parse; a bad address is refused", () => {
    const c = loadConfig({
      env: {
        SIGIL_REDIS_SENTINELS: '["127.0.0.1:26379","10.0.0.2:26379"]',
        SIGIL_REDIS_PASSWORD: "pw",
        SIGIL_REDIS_USERNAME: "api",
      },
    });
    expect(c.redis.sentinels).toEqual(["127.0.0.1:26379", "10.0.0.2:26379"]);
    const o = redisOptions(c.redis);
    expect(o.sentinels).toEqual([
      { host: "127.0.0.1", port: 26379 },
      { host: "10.0.0.2", port: 26379 },
    ]);
    expect(o.name).toBe("sigil");
    expect([o.username, o.password]).toEqual(["api", "pw"]);
    expect(() => loadConfig({ env: { SIGIL_REDIS_SENTINELS: '["nohostport"]' } })).toThrow(
      /host:port/,
    );
    expect(() => loadConfig({ env: { SIGIL_AUDIT_DURABILITY: "maybe" } })).toThrow();
    // URL credentials are used when no username/password is configured.
    const u = redisOptions(
      loadConfig({ env: { REDIS_URL: "redis://w%40x:s3cret@h:7000/2" } }).redis,
    );
    expect([u.username, u.password, u.host, u.port, u.db]).toEqual(["w@x", "s3cret", "h", 7000, 2]);
  });

  it("commands, pub/sub, a blocking pop and BullMQ follow a kill -9 of the primary", async () => {
    const cfg = loadConfig({ env: { SIGIL_REDIS_SENTINELS: JSON.stringify(set.sentinelAddrs) } });
    const cmd = connectRedis(cfg.redis, { maxRetriesPerRequest: null });
    const sub = cmd.duplicate();
    const blocker = cmd.duplicate();
    const conns = [cmd, sub, blocker];
    for (const c of conns) c.on("error", () => undefined);
    const queue = new Queue("deploy-sentinel", {
      connection: cmd.duplicate(),
      prefix: "{sigiltest}",
    });
    const done: string[] = [];
    const worker = new Worker(
      "deploy-sentinel",
      async (job) => {
        done.push(job.id ?? "");
        return "ok";
      },
      { connection: cmd.duplicate(), prefix: "{sigiltest}", concurrency: 2 },
    );
    worker.on("error", () => undefined);
    try {
      await cmd.set("k", "before");
      const heard: string[] = [];
      sub.on("message", (_ch, m) => heard.push(m));
      await sub.subscribe("chan");
      const popped = blocker.blpop("list", 0);
      await queue.add("j", {}, { jobId: "before" });
      await waitFor("job before failover", async () => done.includes("before"));
      const oldPort = set.primary.port;
      expect(await set.currentPrimaryPort()).toBe(oldPort);

      set.primary.proc.kill("SIGKILL");
      await waitFor("sentinel to promote the replica", async () =>
        (await set.currentPrimaryPort()) === set.replica.port ? true : undefined,
      );
      // Commands: the client reconnects through Sentinel to the new primary and can write.
      await waitFor(
        "a write on the new primary",
        async () => (await cmd.set("k", "after")) === "OK",
      );
      expect(await cmd.get("k")).toBe("after");
      const replica = set.admin(set.replica.port);
      expect(await replica.get("k")).toBe("after");
      // Pub/sub: the duplicate resubscribed on the new primary.
      await waitFor("a message after failover", async () => {
        await cmd.publish("chan", "after");
        return heard.includes("after");
      });
      // Blocking pop: resent on the new primary, so a push there wakes it.
      await cmd.rpush("list", "x");
      expect(await popped).toEqual(["list", "x"]);
      // BullMQ: the producer adds and the worker takes a job on the new primary.
      await waitFor("bullmq add after failover", async () =>
        Boolean(await queue.add("j", {}, { jobId: "after" })),
      );
      await waitFor("job after failover", async () => done.includes("after"), 30_000);
    } finally {
      await worker.close(true).catch(() => undefined);
      await queue.close().catch(() => undefined);
      for (const c of conns) c.disconnect();
    }
  }, 90_000);
});
