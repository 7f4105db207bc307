// A throwaway Redis deployment for the deployment tests: a primary, a replica and three
// Sentinels on free loopback ports under a temp dir, never the shared Redis on 6379. Every
// process is started here and killed in stop() (by pid), also when a test fails.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined | false>,
  ms = 20_000,
): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export interface RedisProc {
  port: number;
  proc: ChildProcess;
}

export interface SentinelSet {
  dir: string;
  masterName: string;
  primary: RedisProc;
  replica: RedisProc;
  sentinels: RedisProc[];
  /** "127.0.0.1:port" of each sentinel, for `[redis] sentinels`. */
  sentinelAddrs: string[];
  /** The port Sentinel names as primary now. */
  currentPrimaryPort(): Promise<number>;
  admin(port: number): Redis;
  stop(): Promise<void>;
}

export interface SentinelSetOptions {
  /** Extra redis-server arguments for both data nodes (e.g. an ACL file). */
  serverArgs?: string[];
  /** Password Redis's replication and Sentinel use (`masterauth` / auth-pass), if ACLs are on. */
  auth?: { user: string; pass: string };
  downAfterMs?: number;
  /** A second replica, so a promoted replica still has one to WAIT for. */
  secondReplica?: boolean;
  /** Sentinels to start (default 3; 0 for a test that promotes by hand). */
  sentinels?: number;
}

function startRedis(args: string[], log: string): ChildProcess {
  const p = spawn("redis-server", args, { stdio: ["ignore", "ignore", "ignore"] });
  p.on("error", (e) => writeFileSync(log, String(e)));
  return p;
}

export async function startSentinelSet(o: SentinelSetOptions = {}): Promise<SentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), "sigil-sentinel-"));
  const masterName = "sigil";
  const procs: ChildProcess[] = [];
  const clients: Redis[] = [];
  const admin = (port: number) => {
    const c = new Redis({
      port,
      host: "127.0.0.1",
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      ...(o.auth ? { username: o.auth.user, password: o.auth.pass } : {}),
    });
    c.on("error", () => undefined);
    clients.push(c);
    return c;
  };
  const node = async (name: string, extra: string[]): Promise<RedisProc> => {
    const port = await freePort();
    const d = join(dir, name);
    rmSync(d, { recursive: true, force: true });
    await import("node:fs/promises").then((f) => f.mkdir(d, { recursive: true }));
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      d,
      "--appendonly",
      "yes",
      "--appendfsync",
      "always",
      "--save",
      "",
      "--maxmemory-policy",
      "noeviction",
      "--logfile",
      join(dir, `${name}.log`),
      ...(o.auth ? ["--masterauth", o.auth.pass, "--masteruser", o.auth.user] : []),
      ...(o.serverArgs ?? []),
      ...extra,
    ];
    const proc = startRedis(args, join(dir, `${name}.err`));
    procs.push(proc);
    await waitFor(`redis on ${port}`, async () => {
      const c = admin(port);
      try {
        return (await c.ping()) === "PONG";
      } finally {
        c.disconnect();
      }
    });
    return { port, proc };
  };
  try {
    const primary = await node("primary", []);
    const replica = await node("replica", ["--replicaof", "127.0.0.1", String(primary.port)]);
    const r = admin(replica.port);
    await waitFor("replica in sync", async () =>
      (await r.info("replication")).includes("master_link_status:up"),
    );
    r.disconnect();
    if (o.secondReplica) {
      const r2 = await node("replica2", ["--replicaof", "127.0.0.1", String(primary.port)]);
      const c2 = admin(r2.port);
      await waitFor("second replica in sync", async () =>
        (await c2.info("replication")).includes("master_link_status:up"),
      );
      c2.disconnect();
    }
    const sentinels: RedisProc[] = [];
    for (let i = 0; i < (o.sentinels ?? 3); i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `logfile ${join(dir, `sentinel-${i}.log`)}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${o.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
          ...(o.auth
            ? [
                `sentinel auth-user ${masterName} ${o.auth.user}`,
                `sentinel auth-pass ${masterName} ${o.auth.pass}`,
              ]
            : []),
          "",
        ].join("\n"),
      );
      // `redis-server <conf> --sentinel` is what the `redis-sentinel` name runs (Debian ships that
      // name in a separate package); the redis-server that infra/redis.sh installs is enough.
      const proc = spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
      procs.push(proc);
      sentinels.push({ port, proc });
    }
    const sentinelAdmin = (port: number) => {
      const c = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1 });
      c.on("error", () => undefined);
      clients.push(c);
      return c;
    };
    const s0 = sentinelAdmin(sentinels[0]?.port ?? primary.port);
    // Sentinels must have found each other and the replica before a failover can elect.
    if (sentinels.length > 0)
      await waitFor("sentinels to see each other and the replica", async () => {
        const m = (await s0.call("SENTINEL", "MASTER", masterName)) as string[];
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < m.length; i += 2) f[m[i]!] = m[i + 1]!;
        return (
          Number(f["num-other-sentinels"]) >= 2 &&
          Number(f["num-slaves"]) >= (o.secondReplica ? 2 : 1)
        );
      });
    return {
      dir,
      masterName,
      primary,
      replica,
      sentinels,
      sentinelAddrs: sentinels.map((s) => `127.0.0.1:${s.port}`),
      async currentPrimaryPort() {
        const a = (await s0.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)) as string[];
        return Number(a[1]);
      },
      admin,
      async stop() {
        for (const c of clients) c.disconnect();
        for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
        await sleep(100);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const c of clients) c.disconnect();
    for (const p of procs) p.kill("SIGKILL");
    throw e;
  }
}
