// Test fixture: a real worker node process (startWorkerNode) with the test Docker driver, so a test
// can kill -9 it mid-job. Configured by the same environment as `npm run worker`.
import { loadNodeConfig } from "../../../functions/node/config";
import { startWorkerNode } from "../../../worker/jobs/node";
import { TestDockerDriver } from "./docker-driver";

const log = (level: string) => (msg: string, f?: Record<string, unknown>) =>
  console.log(JSON.stringify({ level, msg, ...f }));
const node = await startWorkerNode({
  config: loadNodeConfig(),
  env: process.env,
  driver: (id) => new TestDockerDriver(id),
  log: { info: log("info"), warn: log("warn"), error: log("error") },
});
process.once("SIGTERM", () => {
  node.stop(Number(process.env.SIGIL_WORKER_GRACE_MS ?? 10_000)).then(() => process.exit(0));
});
