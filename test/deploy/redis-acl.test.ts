// infra/redis-acl.sh: the worker's Redis user gets NOPERM from Redis itself on keys, policies, pins,
// nonces and audit data (also through EVAL), and a real worker node still runs a job end to end
// with only that user. Runs its own redis-server (never the shared one on 6379).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publicJwk } from "../../shared/crypto";
import { loadOrCreateWorkerKey } from "../../worker/jobs/keys";
import { spawnPrivateRedis } from "../support/private-redis";
import { repoRoot } from "../support/vectors";
import { freePort, waitFor } from "./support/sentinel";

const dir = mkdtempSync(join(tmpdir(), "sigil-acl-"));
const port = await freePort();
const server = spawnPrivateRedis(dir, ["--port", String(port)]);
// The harness and its helpers connect with REDIS_URL: point them at this server (as the admin).
process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
const { startHarness, runLowRisk } = await import("../jobs/support/harness");
type Harness = Awaited<ReturnType<typeof startHarness>>;

const PW = { api: "api-secret-1", worker: "worker-secret-1", metrics: "metrics-secret-1" };
const procs: ChildProcess[] = [];
const clients: Redis[] = [];
let h: Harness;

function runAclScript(prefix: string) {
  return execFileSync("bash", ["infra/redis-acl.sh"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_REDIS_API_PASSWORD: PW.api,
      SIGIL_REDIS_WORKER_PASSWORD: PW.worker,
      SIGIL_REDIS_METRICS_PASSWORD: PW.metrics,
      SIGIL_REDIS_SECRETS_DIR: join(dir, "secrets"),
    },
    encoding: "utf8",
  });
}

function as(user: string, password: string): Redis {
  const c = new Redis({
    port,
    host: "127.0.0.1",
    username: user,
    password,
    maxRetriesPerRequest: 1,
  });
  c.on("error", () => undefined);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  await waitFor("redis", async () => {
    const c = new Redis({ port, lazyConnect: true, retryStrategy: () => null });
    c.on("error", () => undefined);
    try {
      await c.connect();
      return (await c.ping()) === "PONG";
    } finally {
      c.disconnect();
    }
  });
  h = await startHarness("acl");
  // Twice: the second run must leave the same users (idempotent), not fail or duplicate rules.
  runAclScript(h.prefix);
  expect(runAclScript(h.prefix)).toContain("ready");
}, 60_000);

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  for (const c of clients) c.disconnect();
  await h?.close().catch(() => undefined);
  server.stop();
});

describe("least-privilege Redis users (infra/redis-acl.sh)", () => {
  it("the worker user gets NOPERM on keys, policies, pins, nonces and audit data, even through EVAL", async () => {
    const admin = as("default", "");
    const p = h.prefix;
    // What the API wrote under its prefix: the key registry, policies, the audit chain, ...
    const stored = await admin.scan("0", "MATCH", `${p}:*`, "COUNT", 10_000);
    const keys = stored[1];
    expect(keys.some((k) => k.startsWith(`${p}:keys:`))).toBe(true);
    const w = as("sigil-worker", PW.worker);
    const targets = [
      ...keys,
      `${p}:keys:anything`,
      `${p}:policy:rev`,
      `${p}:pins:tool`,
      `${p}:nonce:k:n`,
      `${p}:audit:{default}:ev`,
    ];
    for (const key of targets) {
      await expect(w.type(key), key).rejects.toThrow(/NOPERM/);
      await expect(w.set(key, "x"), key).rejects.toThrow(/NOPERM/);
      await expect(w.del(key), key).rejects.toThrow(/NOPERM/);
      // Scripts run with the caller's ACL: no way round it through Lua.
      await expect(
        w.eval("return redis.call('GET', KEYS[1])", 1, key),
        `eval ${key}`,
      ).rejects.toThrow(/NOPERM|No permissions/);
    }
    await expect(w.subscribe(`${p}:keys:changed`)).rejects.toThrow(/NOPERM/);
    await expect(w.call("FLUSHALL")).rejects.toThrow(/NOPERM/);
    await expect(w.call("CONFIG", "SET", "appendonly", "no")).rejects.toThrow(/NOPERM/);
    await expect(w.call("KEYS", "*")).rejects.toThrow(/NOPERM/);
    // The queue's keys it may use.
    expect(await w.set(`{${p}}:probe`, "1")).toBe("OK");
    await w.del(`{${p}}:probe`);

    // The API user: its own prefix, not another deployment's, and no dangerous commands.
    const a = as("sigil-api", PW.api);
    expect(await a.set(`${p}:probe`, "1")).toBe("OK");
    await a.del(`${p}:probe`);
    await expect(a.get("other:keys:x")).rejects.toThrow(/NOPERM/);
    await expect(a.call("FLUSHALL")).rejects.toThrow(/NOPERM/);
    expect((await a.call("CONFIG", "GET", "appendonly")) as string[]).toEqual([
      "appendonly",
      "yes",
    ]);
    const m = as("sigil-metrics", PW.metrics);
    expect(await m.info("server")).toContain("redis_version");
    await expect(m.get(`${p}:keys:x`)).rejects.toThrow(/NOPERM/);
  });

  it("a worker node with only the worker user's credentials runs a job end to end", async () => {
    const wdir = mkdtempSync(join(tmpdir(), "sigil-acl-worker-"));
    const workerId = `acl-${process.pid}`;
    const key = await loadOrCreateWorkerKey(join(wdir, "worker"));
    await h.addKey("worker", workerId, key.signer);
    const p = spawn(process.execPath, ["--import", "tsx", "test/jobs/support/worker-proc.ts"], {
      cwd: repoRoot,
      env: {
        ...process.env,
        REDIS_URL: `redis://127.0.0.1:${port}`,
        SIGIL_REDIS_USERNAME: "sigil-worker",
        SIGIL_REDIS_PASSWORD: PW.worker,
        SIGIL_DATA_DIR: wdir,
        SIGIL_REDIS_PREFIX: h.prefix,
        SIGIL_SANDBOX_QUEUE: h.config.sandbox.queue,
        SIGIL_API_URL: h.baseUrl,
        SIGIL_SERVICE_KEYS: JSON.stringify([publicJwk(h.service.publicKey)]),
        SIGIL_WORKER_ID: workerId,
        SIGIL_SANDBOX_WARM_POOL_SIZE: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(p);
    let out = "";
    p.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
    });
    p.stderr?.on("data", (b: Buffer) => {
      out += b.toString();
    });
    await waitFor(
      "worker ready",
      async () => {
        if (p.exitCode !== null) throw new Error(`worker exited: ${out}`);
        return out.includes("worker ready");
      },
      60_000,
    );
    const agent = h.client(await h.addKey("agent", "agent-acl", undefined, { trust: 1 }));
    const { job } = await runLowRisk(agent, ["sh", "-c", "echo ok"], 60_000);
    expect(job.status, out).toBe("succeeded");
    expect(job.result?.stdout).toBe("ok\n");
    expect(out).not.toMatch(/NOPERM/);
    p.kill("SIGTERM");
    await new Promise((r) => p.once("exit", r));
    rmSync(wdir, { recursive: true, force: true });
  }, 120_000);
});
