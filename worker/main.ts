// A worker node: `npm run worker`. Checks its prerequisites, then consumes sandbox jobs.
// (Until the job consumer lands, it checks and waits.)

import { readFileSync } from "node:fs";
import Docker from "dockerode";
import { Redis } from "ioredis";
import { ConfigError, loadConfig } from "../shared/config";

function config() {
  try {
    const path = process.env.SIGIL_CONFIG;
    return loadConfig({
      env: process.env,
      ...(path ? { toml: { path, text: readFileSync(path, "utf8") } } : {}),
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
}

const cfg = config();
const problems: string[] = [];
const redis = new Redis(cfg.redis.url, { maxRetriesPerRequest: null, lazyConnect: true });
try {
  await redis.connect();
  await redis.ping();
} catch (e) {
  problems.push(`redis at ${cfg.redis.url} unreachable: ${(e as Error).message}`);
}
const docker = new Docker();
try {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  if (!info.Runtimes?.runsc)
    problems.push("runsc is not registered with dockerd; run infra/docker.sh");
  const tags = new Set((await docker.listImages()).flatMap((i) => i.RepoTags ?? []));
  for (const image of cfg.sandbox.images)
    if (!tags.has(image)) problems.push(`image ${image} missing; run infra/images.sh`);
} catch (e) {
  problems.push(`dockerd unreachable: ${(e as Error).message}; run infra/docker.sh`);
}
if (problems.length > 0) {
  console.error(`[sigil worker] cannot start:\n  - ${problems.join("\n  - ")}`);
  process.exit(1);
}
console.log(
  JSON.stringify({
    time: new Date().toISOString(),
    level: "info",
    msg: "worker ready, waiting for jobs",
  }),
);
const stop = () => {
  redis.disconnect();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
setInterval(() => {}, 1 << 30);
