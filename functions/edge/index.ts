// The edge entry (Cloudflare Workers / workerd): the same createApp as Node, with state in Durable
// Objects (SQLite-backed, see wrangler.toml). `npm run edge` runs it under wrangler dev (Miniflare).
import type { ExecutionContext } from "hono";
import { createApp, type SigilApp } from "../app";
import { problemTypeBase } from "../problem";
import { type ConsoleAssets, contentTypeOf } from "../routes/console";
import { edgeRetentionSweep } from "./audit/archive";
import { composeEdge } from "./compose";
import { ARCHIVE_OBJECT } from "./constants";
import type { AssetsFetcher, EdgeEnv } from "./env";
import { stubSource } from "./runtime";

export { ApprovalsObject } from "./approvals/object";
export { ArchiveObject } from "./audit/archive-object";
export { AuditObject } from "./audit/object";
export { ReportsObject } from "./compliance/object";
export { composeEdge } from "./compose";
export type { EdgeEnv } from "./env";
export { IncidentsObject } from "./incidents/object";
export { KeysObject } from "./keys/object";
export { LimitsObject } from "./limits/object";
export { PinsObject } from "./pins/object";
export { PolicyObject } from "./policy/object";
export { QuarantineObject } from "./quarantine/object";
export { ReplayObject } from "./replay/object";

let app: Promise<SigilApp> | undefined;

/** The console bundle from Workers static assets (wrangler.toml [assets], run_worker_first). */
function edgeConsoleAssets(assets: AssetsFetcher): ConsoleAssets {
  return async (path) => {
    const res = await assets.fetch(new Request(`https://assets.invalid/console/${path}`));
    if (res.status !== 200) return undefined;
    return { body: await res.arrayBuffer(), type: contentTypeOf(path) };
  };
}

function appFor(env: EdgeEnv): Promise<SigilApp> {
  if (!app) {
    const assets = env.ASSETS;
    const p = composeEdge(env).then((deps) =>
      createApp(assets ? { ...deps, consoleAssets: edgeConsoleAssets(assets) } : deps),
    );
    app = p;
    p.catch(() => {
      if (app === p) app = undefined;
    });
  }
  return app;
}

/** Fail closed: if the isolate cannot compose (a DO or config problem), every request gets a 503. */
function unavailable(e: unknown): Response {
  console.error(
    JSON.stringify({
      level: "error",
      msg: "edge composition failed",
      err: e instanceof Error ? e.message : String(e),
    }),
  );
  return new Response(
    JSON.stringify({
      type: `${problemTypeBase}unavailable`,
      title: "Service unavailable",
      status: 503,
      detail:
        "the edge could not reach its state (Durable Objects) or its configuration is invalid",
    }),
    { status: 503, headers: { "content-type": "application/problem+json" } },
  );
}

export default {
  async fetch(request: Request, env: EdgeEnv, ctx: ExecutionContext): Promise<Response> {
    let a: SigilApp;
    try {
      a = await appFor(env);
    } catch (e) {
      return unavailable(e);
    }
    return a.fetch(request, env, ctx);
  },
  /**
   * The cron trigger (wrangler.toml [triggers]): the audit retention sweep, shared with Node
   * (shared/audit/retention.ts), archiving into the ArchiveObject before it prunes. A failure is
   * logged and retried at the next trigger; nothing is pruned unless its archive was stored.
   */
  async scheduled(_event: unknown, env: EdgeEnv, ctx: ExecutionContext): Promise<void> {
    const deps = await composeEdge(env);
    ctx.waitUntil(
      edgeRetentionSweep(deps.config.security.audit_retention_days, {
        audit: deps.audit,
        now: Date.now,
        archive: stubSource(env.SIGIL_ARCHIVE, ARCHIVE_OBJECT),
        minimumDays: deps.compliance?.retentionFloorDays ?? 0,
      }).then(
        (r) => deps.log.info("audit retention sweep", { ...r }),
        (e: unknown) =>
          deps.log.error("audit retention sweep failed", {
            err: e instanceof Error ? e.message : String(e),
          }),
      ),
    );
  },
};
