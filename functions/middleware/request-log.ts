// One log line per request, carrying the request id and the authenticated keyid.
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../shared/log";
import type { AppEnv } from "../router";

export function requestLog(log: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    await next();
    log.info("request", {
      requestId: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - start) * 100) / 100,
      keyid: c.get("keyid"),
    });
  };
}
