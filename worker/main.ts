// A worker node: `npm run worker`. Loads its key, checks its prerequisites (fails fast with clear
// messages), removes orphans, then consumes sandbox jobs until SIGTERM.

import { loadNodeConfigOrExit } from "../platform/node/config";
import { jsonLogger } from "../shared/log";
import { PreflightError, startWorkerNode, type WorkerNode } from "./jobs/lifecycle";
import { createSandboxDriver } from "./jobs/sandbox-driver";

const config = loadNodeConfigOrExit();
const log = jsonLogger(config.server.log_level);

const graceMs = Number(process.env.SIGIL_WORKER_GRACE_MS ?? "") || 30_000;
let sandbox: ReturnType<typeof createSandboxDriver> | undefined;
let node: WorkerNode | undefined;
let stopSignal: string | undefined;

function stop(signal: string): void {
  // Handlers stay installed: a second signal (a supervisor repeating SIGTERM, Ctrl-C with
  // `npm start` signalling too) must not kill the process before it removed its containers.
  if (stopSignal) {
    log.info("already stopping", { signal });
    return;
  }
  stopSignal = signal;
  if (!node) {
    // During start-up no warm container exists yet (a probe container removes itself, and
    // carries this process as its owner for the next worker's sweep): stop at once.
    log.info("stopping during start-up", { signal });
    process.exit(1);
  }
  log.info("stopping: no new jobs, finishing running ones", { signal, graceMs });
  node.stop(graceMs).then(
    () => process.exit(0),
    (e) => {
      log.error("shutdown failed", { err: String(e) });
      process.exit(1);
    },
  );
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

try {
  node = await startWorkerNode({
    config,
    env: process.env,
    log,
    processMetrics: true,
    driver: (workerId) => {
      sandbox = createSandboxDriver(workerId, config);
      return sandbox.driver;
    },
    preflight: [async () => (sandbox ? sandbox.preflight() : [])],
  });
  // Fill the warm pools in the background; a job that arrives first gets a cold container.
  sandbox?.warm().catch((e) => log.warn("warm pool could not fill", { err: String(e) }));
} catch (e) {
  console.error(`[sigil worker] ${e instanceof PreflightError ? e.message : (e as Error).message}`);
  process.exit(1);
}
