// A redis-server of a test's own, for tests that configure Redis itself (ACL users, TLS, a memory
// ceiling): on loopback, its files in a temp dir, never the shared Redis on 6379. Durable like the
// deployment's (docs/deployment.md): every write appended (AOF), no snapshots.
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";

export interface PrivateRedis {
  proc: ChildProcess;
  /** Ends the server (SIGKILL unless told) and removes `dir`. */
  stop(signal?: NodeJS.Signals): void;
}

/**
 * Starts redis-server with its files in `dir`: `listen` says where (e.g. ["--port", "6390"], or a
 * TLS port with its files), `extra` anything else (a memory ceiling, an fsync policy). Readiness is
 * the caller's to wait for: only it knows how to reach the server.
 */
export function spawnPrivateRedis(
  dir: string,
  listen: string[],
  extra: string[] = [],
): PrivateRedis {
  const proc = spawn(
    "redis-server",
    [...listen, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes", ...extra],
    { stdio: "ignore" },
  );
  return {
    proc,
    stop(signal = "SIGKILL") {
      proc.kill(signal);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
