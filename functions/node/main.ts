// The Node API: `npm run api`. Redis holds state; the same createApp as the edge.
import { serve } from "@hono/node-server";
import { Redis } from "ioredis";
import { createApp } from "../app";
import { jsonLogger } from "../middleware/logger";
import { loadNodeConfigOrExit } from "./config";
import { dockerChecks, redisChecks } from "./health";

const config = loadNodeConfigOrExit();
const log = jsonLogger(config.server.log_level);
const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 2, enableOfflineQueue: false });
redis.on("error", (e) => log.warn("redis connection error", { err: e.message }));

const app = createApp({ config, log, health: [...redisChecks(redis), ...dockerChecks(config)] });

const server = serve(
  { fetch: app.fetch, port: config.server.port, hostname: config.server.host },
  (info) => {
    log.info("sigil api listening", { url: `http://${config.server.host}:${info.port}` });
  },
);

function shutdown(signal: string) {
  log.info("shutting down", { signal });
  server.close(() => {
    redis.disconnect();
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
