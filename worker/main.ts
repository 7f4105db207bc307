// A worker node: `npm run worker`. Loads its key, checks its prerequisites (fails fast with clear
// messages), removes orphans, then consumes sandbox jobs until SIGTERM.

import { loadNodeConfig } from "../functions/node/config";
import { ConfigError } from "../shared/config";
import { PreflightError, startWorkerNode } from "./jobs/node";
import { loadSandboxDriver } from "./jobs/sandbox-loader";

const line = (level: string, msg: string, fields?: Record<string, unknown>) =>
  (level === "error" ? console.error : console.log)(
    JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }),
  );
const log = {
  info: (m: string, f?: Record<string, unknown>) => line("info", m, f),
  warn: (m: string, f?: Record<string, unknown>) => line("warn", m, f),
  error: (m: string, f?: Record<string, unknown>) => line("error", m, f),
};

let config: ReturnType<typeof loadNodeConfig>;
try {
  config = loadNodeConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(e.message);
    process.exit(78);
  }
  throw e;
}

const graceMs = Number(process.env.SIGIL_WORKER_GRACE_MS ?? "") || 30_000;
let driverPreflight: (() => Promise<string[]>) | undefined;
try {
  const node = await startWorkerNode({
    config,
    env: process.env,
    log,
    driver: async (workerId) => {
      const loaded = await loadSandboxDriver(workerId, { config });
      driverPreflight = loaded.preflight;
      return loaded.driver;
    },
    preflight: [async () => (driverPreflight ? driverPreflight() : [])],
  });
  const stop = (signal: string) => {
    log.info("stopping: no new jobs, finishing running ones", { signal, graceMs });
    node.stop(graceMs).then(
      () => process.exit(0),
      (e) => {
        log.error("shutdown failed", { err: String(e) });
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
} catch (e) {
  console.error(`[sigil worker] ${e instanceof PreflightError ? e.message : (e as Error).message}`);
  process.exit(1);
}
