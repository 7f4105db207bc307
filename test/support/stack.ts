// The whole local deployment as `npm start` brings it up (scripts/start.ts: the API and one
// worker, the worker's key registered), on a free port with its own data directory and Redis
// prefix, for tests that act as a user of it.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./edge";
import { connectRedis, dropPrefix, testPrefix } from "./redis";
import { repoRoot } from "./vectors";

export interface Stack {
  base: string;
  dataDir: string;
  prefix: string;
  /** Everything the processes printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function startStack(name: string, env: Record<string, string> = {}): Promise<Stack> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dataDir = await mkdtemp(join(tmpdir(), `sigil-${name}-`));
  const prefix = testPrefix(name).replace(/:$/, "");
  let output = "";
  const proc: ChildProcess = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      SIGIL_PORT: String(port),
      SIGIL_DATA_DIR: dataDir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_LOG_LEVEL: "warn",
      SIGIL_WORKER_ID: `${name}-${port}`,
      // Detection runs in the API once enabled; tests that do not put it under test turn it off
      // (their deliberate replays and killed jobs would otherwise quarantine their keys).
      SIGIL_INCIDENTS_ENABLED: "false",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout?.on("data", (b: Buffer) => {
    output += b.toString();
  });
  proc.stderr?.on("data", (b: Buffer) => {
    output += b.toString();
  });
  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.on("exit", r));
      proc.kill("SIGTERM");
      await exited;
    }
    const redis = connectRedis();
    await dropPrefix(redis, `${prefix}:`);
    redis.disconnect();
    await rm(dataDir, { recursive: true, force: true });
  };
  await new Promise<void>((resolve, reject) => {
    const text = "registered the local worker key";
    const t = setTimeout(() => reject(new Error(`no "${text}" within 90 s:\n${output}`)), 90_000);
    const check = () => {
      if (output.includes(text)) {
        clearTimeout(t);
        resolve();
      } else if (proc.exitCode !== null) {
        clearTimeout(t);
        reject(new Error(`start exited (${proc.exitCode}):\n${output}`));
      } else setTimeout(check, 100);
    };
    check();
  }).catch(async (e: unknown) => {
    await stop();
    throw e;
  });
  return { base, dataDir, prefix, output: () => output, stop };
}
