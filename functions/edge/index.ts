// The edge entry (Cloudflare Workers / workerd): the same createApp as Node, with state in
// Durable Objects. `npm run edge` runs it under wrangler dev (Miniflare).

import { loadConfig } from "../../shared/config";
import { createApp, type SigilApp } from "../app";
import { jsonLogger } from "../middleware/logger";

export interface EdgeEnv {
  [key: string]: unknown;
}

let cached: { app: SigilApp; env: EdgeEnv } | undefined;

function appFor(env: EdgeEnv): SigilApp {
  if (cached?.env === env) return cached.app;
  // Worker vars are the environment; the same names as on Node (SIGIL_*, SYMBIONT_*).
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (typeof v === "string") vars[k] = v;
  const config = loadConfig({ env: vars });
  const app = createApp({
    config,
    log: jsonLogger(config.server.log_level),
    health: [
      { name: "runtime", required: true, check: async () => ({ ok: true, detail: "workerd" }) },
    ],
  });
  cached = { app, env };
  return app;
}

export default {
  fetch(request: Request, env: EdgeEnv, ctx: unknown): Response | Promise<Response> {
    return appFor(env).fetch(request, env, ctx as never);
  },
};
