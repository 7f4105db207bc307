// Metrics and traces of the API (docs/operating.md "Metrics and traces"). The counters are a port
// (ApiMetrics): Node implements it with prom-client (functions/node/metrics.ts); the edge has none
// (its isolates share no counters, and prom-client needs Node built-ins). Traces use the
// OpenTelemetry API only, a no-op until the process registers an SDK.
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Handler, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { type AuditAppendInput, type AuditService, isClientEventType } from "../shared/audit";
import { DecisionKindSchema } from "../shared/policy/schema";
import { TRACER_NAME } from "../shared/tracing";
import type { AppEnv } from "./router";

/** What the API counts. Every label value comes from a bounded set: never a key, job or path. */
export interface ApiMetrics {
  /** A response: its route template (or "unmatched"), method, status and duration. */
  request(route: string, method: string, status: number, seconds: number): void;
  /** An audit event durably appended, by type. */
  auditAppended(eventType: string): void;
  /** A policy decision, by outcome (allow, deny, ...). */
  decision(outcome: string): void;
  /** A rejected request, by the problem type it was answered with (401s and role 403s). */
  authFailure(reason: string): void;
  /** A quota refusal (429, `limit.exceeded`), by the limit. */
  limitExceeded(limit: string): void;
  /** A job accepted into the queue, by tier. */
  jobSubmitted(tier: string): void;
  /** A batch the audit sequencer took: its size and how long its oldest append waited. */
  auditBatch(size: number, oldestWaitSeconds: number): void;
  /** The exposition in the Prometheus text format. */
  expose(): Promise<{ contentType: string; body: string }>;
}

/**
 * The template of the route that handled the request (`/v1/jobs/:id`), never the raw path; a
 * request no route matched (a 404) is "unmatched", so junk paths add no series.
 */
export function routeTemplate(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i]!;
    // Middleware is registered with method ALL; a route has its own method.
    if (r.method !== "ALL") return r.path;
  }
  return "unmatched";
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/**
 * First in the chain: continues a trace named by the request's `traceparent` (through the
 * registered propagator) in a server span, and counts the response.
 */
export function observeRequests(metrics: ApiMetrics | undefined): MiddlewareHandler<AppEnv> {
  const tracer = trace.getTracer(TRACER_NAME);
  return async (c, next) => {
    const start = performance.now();
    const route = routeTemplate(c);
    const method = METHODS.has(c.req.method) ? c.req.method : "OTHER";
    const parent = propagation.extract(context.active(), c.req.raw.headers, headerGetter);
    const span = tracer.startSpan(
      `${method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: { "http.request.method": method, "http.route": route },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), next);
    } finally {
      const status = c.res.status;
      span.setAttribute("http.response.status_code", status);
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      metrics?.request(route, method, status, (performance.now() - start) / 1000);
    }
  };
}

const headerGetter = {
  keys: (h: Headers) => [...h.keys()],
  get: (h: Headers, key: string) => h.get(key) ?? undefined,
};

/** Decisions and job submissions are counted from the events the trail records for them. */
export function observeAudit(audit: AuditService, metrics: ApiMetrics): void {
  audit.observe((e: AuditAppendInput) => {
    // A client names its own event types (agent.*, app.*): one series for all of them.
    metrics.auditAppended(isClientEventType(e.eventType) ? "client" : e.eventType);
    const d = e.details as Record<string, unknown> | undefined;
    if (
      (e.eventType === "policy.decision" || e.eventType === "policy.violation") &&
      DecisionKindSchema.safeParse(d?.decision).success
    )
      metrics.decision(String(d?.decision));
    else if (e.eventType === "job.submitted" && (d?.tier === "docker" || d?.tier === "gvisor"))
      metrics.jobSubmitted(d.tier);
  });
}

/**
 * `GET /metrics` on the public port. app.ts puts it behind the same signed-request authentication
 * as /v1 and a role check (admin, auditor): an unsigned scrape is a 401.
 */
export function metricsHandler(metrics: ApiMetrics): Handler<AppEnv> {
  return async (c) => {
    const { contentType, body } = await metrics.expose();
    return c.body(body, 200, { "content-type": contentType, "cache-control": "no-store" });
  };
}
