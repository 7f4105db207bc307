// The deployment beyond one process (docs/deployment.md), `npm run bench -- deploy`:
// - audit appends at 64 concurrency under `[audit] durability = "fsync"` and `"replicated"`, each
//   on its own throwaway primary + two replicas + three Sentinels, same run; then `kill -9` of the
//   primary under the same load: the failover pause (kill → first acknowledged append sent after
//   it);
// - POST /v1/evaluate throughput with 1 and 2 API processes sharing one Redis prefix, same run
//   (the load generator shares the machine's cores: the ratio is what to read).
import type { Redis } from "ioredis";
import { RedisAuditLog } from "../../functions/node/stores/audit-redis";
import { connectRedis } from "../../platform/node/redis";
import type { Sigil } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { seedOf, webcryptoSigner } from "../audit/support/crypto";
import { Fleet } from "../deploy/support/nodes";
import { startSentinelSet, waitFor } from "../deploy/support/sentinel";
import { connectRedis as connectTestRedis, dropPrefix } from "../support/redis";
import { registeredKey } from "../support/targets";
import { POLICY, REQUEST } from "./http";

const CONCURRENCY = 64;
const APPEND_MS = 5_000;
const HTTP_MS = 8_000;
const HTTP_CONCURRENCY = 32;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function appendRun(durability: "fsync" | "replicated") {
  const set = await startSentinelSet({ downAfterMs: 1000, secondReplica: true });
  const conns: Redis[] = [];
  try {
    const cfg = loadConfig({ env: { SIGIL_REDIS_SENTINELS: JSON.stringify(set.sentinelAddrs) } });
    const redis = connectRedis(cfg.redis, { maxRetriesPerRequest: 2 });
    redis.on("error", () => undefined);
    conns.push(redis);
    const log = await RedisAuditLog.open({
      redis,
      keyPrefix: "bench:",
      signer: await webcryptoSigner(seedOf(7), "audit-1"),
      durability,
      minReplicas: 1,
      replicaTimeoutMs: 1000,
      timeoutMs: 3000,
    });
    let acked = 0;
    let killedAt = 0;
    let firstAfter = 0;
    let stop = false;
    const appender = async (k: number) => {
      while (!stop) {
        const sentAfterKill = killedAt > 0;
        try {
          await log.append({ eventType: "agent.tick", agentId: `a${k}`, details: { k } });
          acked++;
          if (sentAfterKill) firstAfter ||= Date.now();
        } catch {
          await sleep(20);
        }
      }
    };
    const running = Array.from({ length: CONCURRENCY }, (_, k) => appender(k));
    await sleep(1000); // warm-up
    const a0 = acked;
    const t0 = performance.now();
    await sleep(APPEND_MS);
    const rate = ((acked - a0) / (performance.now() - t0)) * 1000;
    set.primary.proc.kill("SIGKILL");
    killedAt = Date.now();
    await waitFor("an append acknowledged after the kill", async () => firstAfter > 0, 60_000);
    stop = true;
    await Promise.all(running);
    await log.close();
    return { rate, pauseMs: firstAfter - killedAt };
  } finally {
    for (const c of conns) c.disconnect();
    await set.stop();
  }
}

async function evaluateLoad(clients: Sigil[], ms: number) {
  let n = 0;
  let errors = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: HTTP_CONCURRENCY }, async (_, k) => {
      const c = clients[k % clients.length]!;
      while (performance.now() < end) {
        try {
          await c.evaluate(REQUEST);
          n++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rps: (n / (performance.now() - t0)) * 1000, errors };
}

async function httpRun(processes: number) {
  const fleet = await Fleet.create();
  const prefix = `benchdeploy${Date.now()}`;
  try {
    const env = { SIGIL_REDIS_PREFIX: prefix, SIGIL_DATA_DIR: fleet.tempDir("bench-api") };
    const first = await fleet.api("api-0", env);
    const rest = await Promise.all(
      Array.from({ length: processes - 1 }, (_, i) => fleet.api(`api-${i + 1}`, env)),
    );
    const admin = fleet.client(first.base);
    await admin.policies.put("p", POLICY);
    const agent = await registeredKey(admin, "agent", "bench-evaluate");
    const clients = [first, ...rest].map((a) => fleet.client(a.base, agent));
    await evaluateLoad(clients, 1500); // warm-up
    return await evaluateLoad(clients, HTTP_MS);
  } finally {
    await fleet.stop();
    const r = connectTestRedis();
    await dropPrefix(r, `${prefix}:`);
    r.disconnect();
  }
}

export async function bench(): Promise<void> {
  const fsync = await appendRun("fsync");
  const replicated = await appendRun("replicated");
  console.log(`| audit appends, ${CONCURRENCY} concurrent | appends/s | failover pause |`);
  console.log("|---|---|---|");
  console.log(`| durability = "fsync" | ${fsync.rate.toFixed(0)} | ${fsync.pauseMs} ms |`);
  console.log(
    `| durability = "replicated" | ${replicated.rate.toFixed(0)} (${((replicated.rate / fsync.rate) * 100).toFixed(0)} % of fsync) | ${replicated.pauseMs} ms |`,
  );
  const one = await httpRun(1);
  const two = await httpRun(2);
  console.log(`\n| POST /v1/evaluate, ${HTTP_CONCURRENCY} concurrent | requests/s | errors |`);
  console.log("|---|---|---|");
  console.log(`| 1 API process | ${one.rps.toFixed(0)} | ${one.errors} |`);
  console.log(
    `| 2 API processes | ${two.rps.toFixed(0)} (×${(two.rps / one.rps).toFixed(2)}) | ${two.errors} |`,
  );
}
