// The Node API: `npm run api`. Redis holds state; the same createApp as the edge.
import { serve } from "@hono/node-server";
import { loadNodeConfigOrExit } from "../../platform/node/config";
import { serveMetrics } from "../../platform/node/metrics-server";
import { connectRedis } from "../../platform/node/redis";
import { allowedAuthorities } from "../../shared/config";
import { jsonLogger } from "../../shared/log";
import { createApp } from "../app";
import { startAuditRetention } from "./audit-retention";
import { composeNode } from "./compose";
import { fileConsoleAssets } from "./console-assets";
import { dockerChecks, redisChecks } from "./health";

const config = loadNodeConfigOrExit();
const log = jsonLogger(config.server.log_level);
const redis = connectRedis(config.redis, { maxRetriesPerRequest: 2 });
redis.on("error", (e) => log.warn("redis connection error", { err: e.message }));

let deps: Awaited<ReturnType<typeof composeNode>>;
try {
  deps = await composeNode({
    config,
    redis,
    log,
    health: [...redisChecks(redis), ...dockerChecks(config)],
    processMetrics: true,
    // Detection and response in this process (docs/incidents.md "Running it"); several API
    // processes share the work exactly once.
    detection: config.incidents.enabled,
  });
} catch (e) {
  const message = (e as Error).message;
  console.error(`[sigil api] cannot start: ${message}`);
  if (/integrity (tag|check)/.test(message)) {
    // Fail closed, but say what to do: this is usually leftover data, not an attack.
    console.error(
      `[sigil api] Redis under the prefix "${config.redis.prefix}" holds records this deployment did not write (an older Sigil, a different SIGIL_KEY_PASSPHRASE or data dir, or tampering), so they are not trusted. Start with a fresh prefix (SIGIL_REDIS_PREFIX), or delete that prefix's keys if they are yours to discard.`,
    );
  }
  process.exit(1);
}
const app = createApp({ ...deps, consoleAssets: fileConsoleAssets() });
startAuditRetention({
  audit: deps.audit,
  redis,
  config,
  log,
  minimumDays: deps.compliance?.retentionFloorDays ?? 0,
});

// The unsigned metrics address, when configured (docs/operating.md "Metrics and traces").
if (deps.metrics && config.metrics.listen) {
  const metrics = await serveMetrics(config.metrics.listen, deps.metrics, (e) =>
    log.error("metrics exposition failed", { err: String(e) }),
  ).catch((e: unknown) => {
    console.error(`[sigil api] cannot serve metrics on ${config.metrics.listen}: ${String(e)}`);
    process.exit(1);
  });
  log.info("metrics listening (unsigned)", { address: config.metrics.listen, port: metrics.port });
}

const server = serve(
  { fetch: app.fetch, port: config.server.port, hostname: config.server.host },
  (info) => {
    log.info("sigil api listening", {
      url: `http://${config.server.host}:${info.port}`,
      // Requests signed for any other @authority are refused ([auth] allowed_authorities).
      authorities: allowedAuthorities(config),
    });
    if (deps.adminKeyPath)
      log.info("local admin key (use it with the SDK's devAdminClient)", {
        path: deps.adminKeyPath,
      });
  },
);

let closing = false;
function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  log.info("shutting down", { signal });
  setTimeout(() => process.exit(0), 10_000).unref();
  server.close(async () => {
    await deps.close().catch(() => {});
    redis.disconnect();
    process.exit(0);
  });
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
