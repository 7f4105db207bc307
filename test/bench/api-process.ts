// One Node API process for a benchmark (`functions/node/main.ts`, as `npm run api` starts it), on
// a free port with its own data directory, Redis prefix and admin key. Quotas are put out of reach:
// a bench sends far more than the defaults allow, and measures the path (the buckets are still
// taken on every request).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sigil } from "../../sdk";
import { publicJwk } from "../../shared/crypto";
import { freePort } from "../support/edge";
import { connectRedis, dropPrefix } from "../support/redis";
import { newKey } from "../support/targets";
import { repoRoot } from "../support/vectors";

export interface BenchApi {
  base: string;
  /** Redis key prefix of this process (other bench state can live under it). */
  prefix: string;
  admin: Sigil;
  /** The process id (a profile written by cpu-profile.ts is named after it). */
  pid: number;
  /** CPU time (user + system) the process has used, in clock ticks (/proc, Linux). */
  cpuTicks(): number;
  /** Stops the process and removes its Redis keys (BullMQ's `{prefix}:` ones too) and data. */
  stop(): Promise<void>;
}

/** `preload`: extra modules for `node --import` (e.g. an OpenTelemetry SDK). */
export async function startBenchApi(
  env: Record<string, string> = {},
  preload: string[] = [],
): Promise<BenchApi> {
  const admin = await newKey();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "sigil-bench-"));
  const prefix = `sigilbench${Date.now()}${port}`;
  const args = ["--import", "tsx", ...preload.flatMap((m) => ["--import", m])];
  const server = spawn(process.execPath, [...args, "functions/node/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PORT: String(port),
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_LOG_LEVEL: "warn",
      SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(admin.publicKey, { kid: admin.kid })]),
      SIGIL_LIMITS_REQUESTS_PER_SECOND: "1000000",
      SIGIL_LIMITS_EVALUATIONS_PER_SECOND: "1000000",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  const up = () =>
    fetch(`${base}/health`).then(
      () => true,
      () => false,
    );
  for (let i = 0; i < 100 && !(await up()); i++) await new Promise((r) => setTimeout(r, 200));
  return {
    base,
    prefix,
    pid: server.pid ?? 0,
    admin: new Sigil({ baseUrl: base, keyId: admin.kid, signer: admin.signer }),
    cpuTicks() {
      const stat = readFileSync(`/proc/${server.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(fields[11]) + Number(fields[12]);
    },
    async stop() {
      server.kill("SIGTERM");
      await new Promise((r) => server.on("exit", r));
      const redis = connectRedis();
      await dropPrefix(redis, `${prefix}:`);
      redis.disconnect();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
