// Test fixture: a real worker node process (startWorkerNode) with the product's sandbox driver, so a test
// can kill -9 it mid-job. Configured by the same environment as `npm run worker`.
import { loadNodeConfig } from "../../../platform/node/config";
import { startWorkerNode } from "../../../worker/jobs/lifecycle";
import { createSandboxDriver } from "../../../worker/jobs/sandbox-driver";

const log = (level: string) => (msg: string, f?: Record<string, unknown>) =>
  console.log(JSON.stringify({ level, msg, ...f }));
const config = loadNodeConfig();
const node = await startWorkerNode({
  config,
  env: process.env,
  driver: (id) => createSandboxDriver(id, config).driver,
  log: { info: log("info"), warn: log("warn"), error: log("error") },
});
process.once("SIGTERM", () => {
  node.stop(Number(process.env.SIGIL_WORKER_GRACE_MS ?? 10_000)).then(() => process.exit(0));
});
