// A real worker node process (support/worker-proc.ts) for tests that kill it or restart it: spawned
// with node itself (not the tsx wrapper, which forks), so a SIGKILL hits the process running jobs.
import { type ChildProcess, spawn } from "node:child_process";
import { publicJwk } from "../../../shared/crypto";
import { repoRoot } from "../../support/vectors";
import type { Harness } from "./harness";

/** The environment a worker process needs to serve harness `h` as `workerId`. */
export function harnessWorkerEnv(
  h: Harness,
  dir: string,
  workerId: string,
): Record<string, string> {
  return {
    SIGIL_DATA_DIR: dir,
    SIGIL_REDIS_PREFIX: h.prefix,
    SIGIL_SANDBOX_QUEUE: h.config.sandbox.queue,
    SIGIL_API_URL: h.baseUrl,
    SIGIL_SERVICE_KEYS: JSON.stringify([publicJwk(h.service.publicKey)]),
    SIGIL_WORKER_ID: workerId,
    SIGIL_WORKER_LOCK_MS: "2000",
  };
}

export function spawnWorkerProc(env: Record<string, string>, procs: ChildProcess[]): ChildProcess {
  const p = spawn(process.execPath, ["--import", "tsx", "test/jobs/support/worker-proc.ts"], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  procs.push(p);
  return p;
}

/** Resolves once the worker logs "worker ready"; rejects with its output if it exits first. */
export function workerReady(p: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    p.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes("worker ready")) resolve();
    });
    p.stderr!.on("data", (b: Buffer) => {
      out += b.toString();
    });
    p.once("exit", (code) => reject(new Error(`worker exited ${code}: ${out}`)));
  });
}

/** Polls `f` every 100 ms until it gives a value, or throws after `ms`. */
export async function until<T>(f: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}
