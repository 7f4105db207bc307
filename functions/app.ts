// createApp(deps): composition only. Every capability is a route module; every side effect
// comes in through deps, so the same app runs on workerd (Durable Objects) and on Node (Redis).
import type { Context, MiddlewareHandler } from "hono";
import { requestId } from "hono/request-id";
import { type ApprovalStore, MemoryApprovalStore } from "../shared/approvals";
import type { AuditService } from "../shared/audit";
import {
  type Framework,
  frameworkRegistry,
  MemoryReportStore,
  type ReportStore,
} from "../shared/compliance";
import { allowedAuthorities, type SigilConfig } from "../shared/config";
import { type Signer, verifyEd25519 } from "../shared/crypto";
import type { KeyResolver, ReplayCache } from "../shared/httpsig";
import type { IncidentStore } from "../shared/incidents";
import type { JobsBackend } from "../shared/jobs";
import { isHeldKey, type KeyManager, type KeyRegistry, usableForNewRequest } from "../shared/keys";
import { LeasingRateLimiter, MemoryRateLimiter, type RateLimiter } from "../shared/limits";
import type { Logger } from "../shared/log";
import type { PolicyEngine } from "../shared/policy";
import { MemoryQuarantineStore, type QuarantineService } from "../shared/quarantine";
import { thresholdsOf } from "../shared/risk";
import type { ToolVerificationService } from "../shared/schemapin";
import type { SubjectVault } from "../shared/subjects";
import type { AuditFn } from "./audit-sink";
import { AuditWindows } from "./audit-windows";
import { type AuthKey, authenticate, jsonGuard } from "./middleware/auth";
import { bodyLimit } from "./middleware/body-limit";
import { notFoundHandler, onError } from "./middleware/errors";
import { inBackground, rateLimits } from "./middleware/limits";
import { refuseQuarantined } from "./middleware/quarantine";
import { requestLog } from "./middleware/request-log";
import { type Role, requireRole } from "./middleware/roles";
import { type ApiMetrics, metricsHandler, observeAudit, observeRequests } from "./observe";
import { Problem, problemResponse } from "./problem";
import { quarantineService } from "./quarantine";
import { type AppEnv, router } from "./router";
import { createApprovals } from "./routes/approvals";
import { auditProblem, auditRoutes } from "./routes/audit";
import { complianceRoutes } from "./routes/compliance";
import { type ConsoleAssets, consoleRoutes } from "./routes/console";
import { docsRoutes } from "./routes/docs";
import { gatewayRoutes } from "./routes/gateway";
import { type HealthCheck, healthRoutes } from "./routes/health";
import { emergencyGate, incidentRoutes } from "./routes/incidents";
import { jobsRoutes } from "./routes/jobs";
import { keyRoutes, wellKnownRoutes } from "./routes/keys";
import { decisionAudit, policyRoutes, reservesNonceWithAudit } from "./routes/policies";
import { quarantineRoutes } from "./routes/quarantine";
import { riskRoutes } from "./routes/risk";
import { subjectProblem, subjectRoutes } from "./routes/subjects";
import { toolRoutes } from "./routes/tools";
import { attachRecheck } from "./sse-feed";

export interface AppDeps {
  config: SigilConfig;
  log: Logger;
  health: HealthCheck[];
  now?: () => number;
  /** Client, worker and service public keys with roles and status. */
  keys: KeyRegistry;
  /** Generates and holds service-side private keys (service-held agent keys). */
  keyManager: KeyManager;
  replay: ReplayCache;
  /** The functions' own key: signs job envelopes (the audit log signs with it too). */
  serviceSigner: Signer;
  audit: AuditService;
  policies: PolicyEngine;
  tools: ToolVerificationService;
  /** Node: BullMQ + Redis records; edge: forwards to the Node gateway. Absent: no /v1/jobs. */
  jobs?: JobsBackend;
  /** Serve /v1/gateway/jobs for edge deployments (Node, where `jobs` is the real backend). */
  jobGateway?: boolean;
  /** Where quota buckets live (Redis, a Durable Object); default: this process's memory. */
  limiter?: RateLimiter;
  /**
   * Aggregates auth.failed and limit.exceeded per source and reason; pass one to flush it at
   * shutdown (Node). Its append must reject with a Problem (auditProblem). Default: one per app,
   * windows of `[limits] audit_window_ms`.
   */
  auditWindows?: AuditWindows;
  /** The client's network address (auth failures are aggregated per address when no keyid). */
  clientAddress?: (c: Context) => string | undefined;
  /** Approval records (Redis, a Durable Object); default: this process's memory. */
  approvals?: ApprovalStore;
  /**
   * Quarantines (docs/incidents.md "Quarantine"), enforced right after authentication; default:
   * this process's memory. Incident response places them through the same service.
   */
  quarantine?: QuarantineService;
  /** Prometheus counters (Node); absent: no GET /metrics (the edge). */
  metrics?: ApiMetrics;
  /** Incident records and emergency mode (docs/incidents.md); absent: no /v1/incidents routes. */
  incidents?: IncidentStore;
  /** Compliance reports (docs/compliance.md); absent: reports in memory, no claims about the runtime. */
  compliance?: ComplianceDeps;
  /**
   * Personal data in client events sealed per data subject, export and erasure
   * (docs/data-subjects.md); absent: no sealing and no /v1/subjects routes.
   */
  subjects?: SubjectVault;
  /** The web console's bundle (docs/console.md); absent: GET /console answers 503. */
  consoleAssets?: ConsoleAssets;
  /**
   * The edge: a detection step after every response, in the background (waitUntil); Node runs a
   * poll loop instead (docs/incidents.md "Running it").
   */
  detectAfterResponse?: () => Promise<void>;
}

/** What the runtime tells compliance reports about itself (docs/compliance.md "Checks"). */
export interface ComplianceDeps {
  /** Where reports are kept; default: this process's memory. */
  reports?: ReportStore;
  /** Shipped plus custom frameworks (complianceSetup); default: the shipped ones. */
  frameworks?: ReadonlyMap<string, Framework>;
  /** The least `audit_retention_days` the enforced frameworks allow (0: none). */
  retentionFloorDays?: number;
  /** Whether this runtime prunes past `audit_retention_days` (Node's sweep) or keeps everything. */
  retentionEnforced: boolean;
  /** Whether private keys are encrypted under a secret that is not stored beside them. */
  encryptionAtRest: boolean;
}

const ROLES = new Set<string>(["admin", "agent", "worker", "auditor", "gateway"]);

/**
 * The keys that may authenticate a request: an active key of a request-signing role, inside its
 * validity window. Never a held key (role held, or agent under a held: subject from before that
 * role existed): it signs /v1/sign output only (docs/governance.md, docs/http-api.md "Signatures").
 */
export function requestKeyResolver(
  keys: Pick<KeyRegistry, "get">,
  now: () => number,
): KeyResolver<AuthKey> {
  return async (kid) => {
    const r = await keys.get(kid);
    if (!r) return { status: "unknown" };
    if (isHeldKey(r))
      return { status: "revoked", reason: "a service-held key cannot sign requests" };
    if (!ROLES.has(r.role))
      return { status: "revoked", reason: `a ${r.role} key cannot sign requests` };
    if (!usableForNewRequest(r, now())) {
      return {
        status: "revoked",
        reason: `key is ${r.status === "active" ? "outside its validity window" : r.status}`,
      };
    }
    return {
      status: "active",
      publicKey: r.publicKey,
      kid: r.kid,
      role: r.role as Role,
      subject: r.subject,
      groups: r.groups,
      trust: r.trust,
      ...(r.limits ? { limits: r.limits } : {}),
    };
  };
}

/**
 * /v1/* and GET /metrics: the paths behind the signed-request chain (body limit, authentication,
 * quotas); /metrics is never anonymous on the public port (docs/operating.md).
 */
const SIGNED = "/:signed{(?:v1|metrics)}/*";

const RESULT_PATHS = /^\/v1\/(jobs\/[^/]+\/result|gateway\/jobs\/finish)$/;

function limitFor(config: SigilConfig): MiddlewareHandler<AppEnv> {
  const problem = (limit: number) =>
    new Problem(413, "body-too-large", "Request body too large", `the limit is ${limit} bytes`);
  const general = config.server.body_limit_bytes;
  // A worker's result report carries stdout and stderr, each up to the output cap; so does the
  // edge's forward of it to the Node gateway (`finish`).
  const results = Math.max(general, 2 * config.sandbox.output_bytes + 256 * 1024);
  const generalLimit = bodyLimit({
    maxSize: general,
    onError: (c) => problemResponse(c, problem(general)),
  });
  const resultLimit = bodyLimit({
    maxSize: results,
    onError: (c) => problemResponse(c, problem(results)),
  });
  return (c, next) => (RESULT_PATHS.test(c.req.path) ? resultLimit : generalLimit)(c, next);
}

export function createApp(deps: AppDeps) {
  const { config, log, keys, audit } = deps;
  const now = deps.now ?? Date.now;

  const appendAudit: AuditFn = (e, o) => audit.append(e, o).catch(auditProblem);
  const windows =
    deps.auditWindows ??
    new AuditWindows({
      windowMs: config.limits.audit_window_ms,
      append: (e) => audit.append(e).catch(auditProblem),
      onError: (e) => log.error("aggregated audit event lost", { err: String(e) }),
    });

  const app = router();
  app.use("*", requestId());
  app.use("*", requestLog(log));
  // Counters and the request's server span (functions/observe.ts; a no-op without an SDK).
  app.use("*", observeRequests(deps.metrics));
  if (deps.metrics) observeAudit(audit, deps.metrics);

  if (deps.detectAfterResponse) {
    const detect = deps.detectAfterResponse;
    app.use("*", async (c, next) => {
      await next();
      inBackground(c, detect());
    });
  }

  app.route("/", healthRoutes(deps.health));
  app.route("/", wellKnownRoutes(keys));
  app.route("/", consoleRoutes(deps.consoleAssets));

  app.use(SIGNED, limitFor(config));
  // A summary whose timer did not run (an isolate's waitUntil cut short) is written by the next
  // request to come along.
  app.use(SIGNED, async (c, next) => {
    if (windows.hasDue()) inBackground(c, windows.flushDue());
    await next();
  });
  if (deps.clientAddress) {
    const address = deps.clientAddress;
    app.use(SIGNED, async (c, next) => {
      const a = address(c);
      if (a) c.set("clientAddress", a);
      await next();
    });
  }
  app.use(
    SIGNED,
    authenticate({
      resolveKey: requestKeyResolver(keys, now),
      verify: verifyEd25519,
      replay: deps.replay,
      maxSkewSeconds: config.auth.clock_skew_seconds,
      // Never empty: by default this service's own host and port (shared/config).
      allowedAuthorities: allowedAuthorities(config),
      now,
      // Where the audit log can hold the nonce too (Redis), an evaluation costs one durable
      // write: its decision event and its nonce land together or not at all.
      ...(audit.reservesNonces ? { deferNonce: reservesNonceWithAudit } : {}),
      // Aggregated per source and reason (docs/governance.md): the first rejection of a window is
      // written at once, the rest as one summary with their count, so junk cannot fill Redis. The
      // source is the keyid the request named, else the client's address.
      onRejected: async (f, c) => {
        deps.metrics?.authFailure(f.code);
        const source = f.keyid
          ? `key:${f.keyid}`
          : f.address
            ? `address:${f.address}`
            : "anonymous";
        const agentId = f.keyid ?? "anonymous";
        const first = windows.record({
          key: `${source}\u0000${f.code}`,
          requestId: f.requestId,
          first: {
            eventType: "auth.failed",
            agentId,
            details: {
              code: f.code,
              detail: f.detail,
              method: f.method,
              path: f.path,
              requestId: f.requestId,
              source,
            },
          },
          summary: { eventType: "auth.failed", agentId, details: { code: f.code, source } },
        });
        if (first) {
          inBackground(c, windows.flushLater());
          await first;
        }
      },
    }),
  );
  // A quarantined key or subject is refused before it spends quota or reaches a route.
  const quarantine =
    deps.quarantine ??
    quarantineService({ store: new MemoryQuarantineStore(), ttlMs: 0, audit: appendAudit });
  app.use(SIGNED, refuseQuarantined(quarantine, windows));
  app.use(SIGNED, attachRecheck(requestKeyResolver(keys, now), quarantine));
  app.use(
    SIGNED,
    rateLimits({
      // Chunks of tokens from the shared buckets, spent locally (see leasing.ts): one store trip
      // per tenth of a burst, never more admitted than the shared buckets hold.
      limiter: new LeasingRateLimiter(deps.limiter ?? new MemoryRateLimiter()),
      config: config.limits,
      windows,
      ...(deps.metrics ? { onRefused: deps.metrics.limitExceeded } : {}),
    }),
  );
  app.use("/v1/*", jsonGuard());
  if (deps.incidents) app.use("/v1/*", emergencyGate(deps.incidents));
  if (deps.metrics)
    app.get("/metrics", requireRole("admin", "auditor"), metricsHandler(deps.metrics));

  app.route("/", keyRoutes({ registry: keys, manager: deps.keyManager, audit: appendAudit, now }));
  const approvals = createApprovals({
    store: deps.approvals ?? new MemoryApprovalStore(),
    config,
    audit: appendAudit,
    now,
    signer: deps.serviceSigner,
    log,
    ...(deps.jobs ? { heldJobs: deps.jobs } : {}),
  });
  app.route(
    "/",
    policyRoutes({
      policies: deps.policies,
      audit: appendAudit,
      now,
      approvalStep: approvals.step,
    }),
  );
  app.route("/", approvals.routes);
  const vault = deps.subjects;
  app.route(
    "/",
    auditRoutes(audit, vault ? (d) => vault.seal(d).catch(subjectProblem) : undefined),
  );
  if (vault) app.route("/", subjectRoutes({ vault, audit, record: appendAudit }));
  app.route("/", quarantineRoutes(quarantine, deps.incidents));
  if (deps.incidents)
    app.route(
      "/",
      incidentRoutes({
        store: deps.incidents,
        audit: appendAudit,
        overrideEnabled: config.security.emergency_override_enabled,
        now,
      }),
    );
  app.route(
    "/",
    complianceRoutes({
      audit,
      record: appendAudit,
      frameworks: deps.compliance?.frameworks ?? frameworkRegistry(),
      reports: deps.compliance?.reports ?? new MemoryReportStore(),
      keys,
      signer: deps.serviceSigner,
      // Fail closed: a runtime that says nothing about itself claims neither.
      facts: {
        retentionDays: config.security.audit_retention_days,
        retentionEnforced: deps.compliance?.retentionEnforced ?? false,
        encryptionAtRest: deps.compliance?.encryptionAtRest ?? false,
      },
      now,
    }),
  );
  app.route("/", riskRoutes(thresholdsOf(config.risk)));
  app.route("/", toolRoutes({ tools: deps.tools, audit: appendAudit }));
  if (deps.jobs) {
    app.route(
      "/",
      jobsRoutes({
        config,
        backend: deps.jobs,
        serviceSigner: deps.serviceSigner,
        evaluate: async (req, caller) => {
          await deps.policies.reload();
          // req.context carries the server-set agent.* and request.time (routes/jobs.ts).
          const d = deps.policies.evaluate({
            action: req.action,
            resource: req.resource,
            context: req.context,
          });
          await appendAudit(decisionAudit(caller.subject ?? caller.keyid, req, d, caller.keyid));
          return d;
        },
        audit: async (e) => {
          await appendAudit({
            eventType: e.eventType,
            agentId: e.agentId ?? "system",
            details: e.details,
          });
        },
        workerKey: async (kid) => {
          const r = await keys.get(kid);
          return r && r.role === "worker" && usableForNewRequest(r, now())
            ? r.publicKey
            : undefined;
        },
        now,
        approvals: approvals.service,
        quarantine,
      }),
    );
    // Node serves the edge's job calls; the edge itself (a forwarding backend) does not.
    if (deps.jobGateway) {
      app.route("/", gatewayRoutes({ backend: deps.jobs, keys, config, audit: appendAudit }));
    }
  }

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Sigil API",
      version: "1",
      description:
        "Zero-trust security layer for AI agents. Every /v1 request is signed with RFC 9421 HTTP Message Signatures (Ed25519), covering @method, @authority, @path (@query) and content-digest, with created and nonce.",
    },
  });
  app.route(
    "/",
    docsRoutes(() =>
      app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "Sigil API", version: "1" } }),
    ),
  );
  app.onError(onError(log));
  app.notFound(notFoundHandler);
  return app;
}

export type SigilApp = ReturnType<typeof createApp>;
