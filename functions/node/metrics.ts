// The API's metrics on prom-client (docs/operating.md "Metrics and traces"): one registry per app,
// Prometheus names (`sigil_` prefix, `_total` counters, `_seconds` histograms), labels from
// bounded sets only.
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { ApiMetrics } from "../observe";

/** Latency buckets in seconds: 1 ms to 10 s. */
const LATENCY = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export function prometheusApiMetrics(opts: { processMetrics?: boolean } = {}): ApiMetrics & {
  registry: Registry;
} {
  const registry = new Registry();
  // Process CPU, memory, event-loop lag: once per process, not per test app.
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: "sigil_api_" });
  const registers = [registry];
  const requests = new Counter({
    name: "sigil_http_requests_total",
    help: "HTTP responses by route template, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers,
  });
  const latency = new Histogram({
    name: "sigil_http_request_duration_seconds",
    help: "Time from the request's arrival to its response, by route template and method",
    labelNames: ["route", "method"] as const,
    buckets: LATENCY,
    registers,
  });
  const audit = new Counter({
    name: "sigil_audit_appends_total",
    help: "Audit events durably appended, by event type",
    labelNames: ["event_type"] as const,
    registers,
  });
  const decisions = new Counter({
    name: "sigil_policy_decisions_total",
    help: "Policy decisions (evaluations and job submissions), by outcome",
    labelNames: ["outcome"] as const,
    registers,
  });
  const auth = new Counter({
    name: "sigil_auth_failures_total",
    help: "Requests refused by authentication (401) or a role check (403), by reason",
    labelNames: ["reason"] as const,
    registers,
  });
  const limits = new Counter({
    name: "sigil_rate_limit_refusals_total",
    help: "Requests refused over a quota (429, limit.exceeded), by limit",
    labelNames: ["limit"] as const,
    registers,
  });
  const jobs = new Counter({
    name: "sigil_jobs_submitted_total",
    help: "Jobs signed and queued, by sandbox tier",
    labelNames: ["tier"] as const,
    registers,
  });
  const batchSize = new Histogram({
    name: "sigil_audit_batch_size",
    help: "Appends sealed together in one audit batch (one signature pass, one Redis commit)",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers,
  });
  const sequencerLag = new Histogram({
    name: "sigil_audit_sequencer_lag_seconds",
    help: "How long the oldest append of each batch waited in the queue before the sequencer took it",
    buckets: LATENCY,
    registers,
  });
  return {
    registry,
    request(route, method, status, seconds) {
      requests.inc({ route, method, status: String(status) });
      latency.observe({ route, method }, seconds);
    },
    auditAppended: (eventType) => audit.inc({ event_type: eventType }),
    decision: (outcome) => decisions.inc({ outcome }),
    authFailure: (reason) => auth.inc({ reason }),
    limitExceeded: (limit) => limits.inc({ limit }),
    jobSubmitted: (tier) => jobs.inc({ tier }),
    auditBatch(size, oldestWaitSeconds) {
      batchSize.observe(size);
      sequencerLag.observe(oldestWaitSeconds);
    },
    async expose() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
