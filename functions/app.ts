// createApp(deps): composition only. Every capability is a route module; every side effect
// comes in through deps, so the same app runs on workerd (Durable Objects) and on Node (Redis).
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { SigilConfig } from "../shared/config";
import { notFoundHandler, onError } from "./middleware/errors";
import { type Logger, requestLog } from "./middleware/logger";
import { Problem, problemResponse } from "./problem";
import { router } from "./router";
import { type HealthCheck, healthRoutes } from "./routes/health";

export interface AppDeps {
  config: SigilConfig;
  log: Logger;
  health: HealthCheck[];
}

export function createApp(deps: AppDeps) {
  const app = router();
  app.use("*", requestId());
  app.use("*", requestLog(deps.log));
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: deps.config.server.body_limit_bytes,
      onError: (c) =>
        problemResponse(
          c,
          new Problem(
            413,
            "body-too-large",
            "Request body too large",
            `the limit is ${deps.config.server.body_limit_bytes} bytes`,
          ),
        ),
    }),
  );

  app.route("/", healthRoutes(deps.health));

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Sigil API",
      version: "1",
      description:
        "Zero-trust security layer for AI agents. /v1 requests are signed with RFC 9421 (Ed25519).",
    },
  });
  app.onError(onError(deps.log));
  app.notFound(notFoundHandler);
  return app;
}

export type SigilApp = ReturnType<typeof createApp>;
