// Composition root for the edge (workerd): the ports composeCore (functions/core.ts) builds on.
// Durable Object adapters for every port, private keys encrypted at rest in the KeysObject, admin
// keys from SIGIL_ADMIN_KEYS only, discovery through the platform's fetch, and jobs forwarded to
// the Node gateway. What differs from Node is said inline.
import { complianceSetup, parseFrameworksJson } from "../../shared/compliance";
import { allowedAuthorities, loadConfig } from "../../shared/config";
import { jsonLogger } from "../../shared/log";
import type { AppDeps } from "../app";
import { composeCore } from "../core";
import type { HealthCheck } from "../routes/health";
import { DoApprovalStore } from "./approvals/adapter";
import { DoAuditLog } from "./audit/adapter";
import { DoReportStore } from "./compliance/adapter";
import {
  APPROVALS_OBJECT,
  INCIDENTS_OBJECT,
  KEYS_OBJECT,
  POLICIES_OBJECT,
  QUARANTINE_OBJECT,
  REPORTS_OBJECT,
} from "./constants";
import { type EdgeEnv, stringVars } from "./env";
import { DoIncidentStore } from "./incidents/adapter";
import { GatewayJobsBackend } from "./jobs/gateway";
import { DoKeyRegistry, DoSecretStore, DoSubjectKeyStore } from "./keys/adapter";
import { EDGE_SCRYPT, edgeKeySecret } from "./keys/secret";
import { DoRateLimiter } from "./limits/adapter";
import { DoPinStore } from "./pins/adapter";
import { DoPolicyStore } from "./policy/adapter";
import { DoQuarantineStore } from "./quarantine/adapter";
import { DoReplayCache } from "./replay/adapter";
import { unwrap } from "./rpc";
import { stubFor, stubSource } from "./runtime";

function healthChecks(env: EdgeEnv, chain: string): HealthCheck[] {
  const ping = async (name: string, p: Promise<string>) => {
    if ((await p) !== "ok") throw new Error(`${name} answered unexpectedly`);
  };
  return [
    { name: "runtime", required: true, check: async () => ({ ok: true, detail: "workerd" }) },
    {
      name: "durable-objects",
      required: true,
      check: async () => {
        await Promise.all([
          ping("keys", stubFor(env.SIGIL_KEYS, KEYS_OBJECT).ping()),
          ping("policies", stubFor(env.SIGIL_POLICIES, POLICIES_OBJECT).ping()),
          ping("audit", stubFor(env.SIGIL_AUDIT, chain).ping()),
        ]);
        return { ok: true, detail: "keys, policies and audit objects answer" };
      },
    },
  ];
}

const BINDINGS = [
  "SIGIL_KEYS",
  "SIGIL_REPLAY",
  "SIGIL_POLICIES",
  "SIGIL_PINS",
  "SIGIL_AUDIT",
  "SIGIL_LIMITS",
  "SIGIL_APPROVALS",
  "SIGIL_QUARANTINE",
  "SIGIL_INCIDENTS",
  "SIGIL_REPORTS",
  "SIGIL_ARCHIVE",
] as const;

async function compose(env: EdgeEnv): Promise<AppDeps> {
  for (const b of BINDINGS) {
    if (typeof (env as Record<string, unknown>)[b] !== "object")
      throw new Error(`missing Durable Object binding ${b}`);
  }
  // Worker vars and secrets are the environment; the same names as on Node (SIGIL_*, SYMBIONT_*).
  const config = loadConfig({ env: stringVars(env) });
  const log = jsonLogger(config.server.log_level);

  if (config.auth.allowed_authorities.length === 0) {
    // A Worker does not know the host it is reached under: by default it answers for its
    // configured server host:port (wrangler dev's 127.0.0.1:8787) only, which fails closed.
    log.warn(
      "no SIGIL_AUTH_ALLOWED_AUTHORITIES: requests are accepted only when signed for the configured server host:port; set it to the Worker's public host",
      { authorities: allowedAuthorities(config) },
    );
  }

  // SchemaPin discovery. Trust bundles come inline (a Worker var or secret holding the JSON, e.g.
  // SIGIL_TOFU_TRUST_BUNDLES): there are no files to read. workerd has no DNS API, so the edge
  // cannot resolve a name, check its addresses or pin a connection; what it can do is refuse by
  // name (the shared resolver never fetches an IP literal in any notation, localhost or a
  // special-use name, and follows no redirect off the origin). In production the platform's fetch
  // runs on Cloudflare's network, not inside the operator's, so private addresses there do not
  // reach the deployment's network; `wrangler dev` fetches from the local machine. Deployments that
  // need the guarantee regardless set `[tofu] discovery = "bundles-only"`.
  if (
    config.tofu.discovery === "network" &&
    (config.tofu.discovery_allow_cidrs.length > 0 || config.tofu.discovery_resolvers.length > 0)
  ) {
    log.warn(
      "[tofu] discovery_allow_cidrs and discovery_resolvers have no effect on the edge: the platform's fetch resolves names itself",
    );
  }

  // Custom frameworks come inline (SIGIL_COMPLIANCE_FRAMEWORKS_JSON: no files on the edge); a bad
  // one, or retention below an enforced framework's minimum, fails composition (every request 503).
  const compliance = complianceSetup(
    { retentionDays: config.security.audit_retention_days, enforce: config.compliance.enforce },
    parseFrameworksJson(config.compliance.frameworks_json, "SIGIL_COMPLIANCE_FRAMEWORKS_JSON"),
  );

  const chain = config.audit.chain;
  const gateway = config.sandbox.gateway_url;
  const core = await composeCore(config, async () => {
    const keysObject = stubSource(env.SIGIL_KEYS, KEYS_OBJECT);
    const { secret, generated } = await edgeKeySecret(env, keysObject);
    if (generated) {
      log.warn(
        "no SIGIL_KEY_PASSPHRASE: private keys are encrypted under a dev secret kept in Durable Object storage; set it as a Worker secret in production",
      );
    }
    return {
      log,
      health: healthChecks(env, chain),
      keys: new DoKeyRegistry(keysObject),
      secrets: new DoSecretStore(keysObject),
      secret,
      scrypt: EDGE_SCRYPT,
      // Isolates cold-start together; a lease in the KeysObject makes one of them the creator (Node
      // has one process per data directory and needs none).
      serviceKeyLease: async (holder, ttlMs) =>
        unwrap(await keysObject().lease("service-key", holder, ttlMs)),
      // No data directory to write a generated admin key to: without SIGIL_ADMIN_KEYS no admin key
      // exists on the edge.
      replay: new DoReplayCache(env.SIGIL_REPLAY),
      // The chain's object seals events with the service key it decrypts itself.
      auditLog: (signer) =>
        new DoAuditLog({ object: stubSource(env.SIGIL_AUDIT, chain), chain, kid: signer.kid }),
      policyStore: new DoPolicyStore(stubSource(env.SIGIL_POLICIES, POLICIES_OBJECT)),
      pins: new DoPinStore(env.SIGIL_PINS),
      discovery: { fetch: (url, init) => fetch(url, init) },
      // Quotas hold across every isolate: one LimitsObject per subject holds its buckets.
      limiter: new DoRateLimiter(env.SIGIL_LIMITS),
      // Approvals hold across every isolate: one ApprovalsObject holds them all.
      approvals: new DoApprovalStore(stubSource(env.SIGIL_APPROVALS, APPROVALS_OBJECT)),
      // One QuarantineObject holds every quarantine; no bus between isolates, so no cache either.
      quarantine: new DoQuarantineStore(stubSource(env.SIGIL_QUARANTINE, QUARANTINE_OBJECT)),
      incidents: new DoIncidentStore(stubSource(env.SIGIL_INCIDENTS, INCIDENTS_OBJECT)),
      // Reports in one ReportsObject, readable from every isolate; retention is enforced by the
      // cron trigger (index.ts scheduled), archiving into the ArchiveObject before each prune.
      compliance: {
        ...compliance,
        reports: new DoReportStore(stubSource(env.SIGIL_REPORTS, REPORTS_OBJECT)),
        retentionEnforced: true,
        encryptionAtRest: !generated,
      },
      // Subject keys sit beside the private keys they share a key hierarchy with.
      subjects: new DoSubjectKeyStore(keysObject),
      // Set by Cloudflare on every request (a client cannot forge it there).
      clientAddress: (c) => c.req.header("cf-connecting-ip"),
      ...(gateway
        ? {
            jobs: ({ serviceSigner }) =>
              new GatewayJobsBackend({ baseUrl: gateway, signer: serviceSigner }),
          }
        : {}),
    };
  });
  // No process outlives a request on the edge: detection steps after responses, kept alive by
  // waitUntil (docs/incidents.md "Running it": what the edge does and does not do).
  const ir = core.incidentResponse;
  return config.incidents.enabled && ir ? { ...core, detectAfterResponse: ir.kick } : core;
}

let cached: Promise<AppDeps> | undefined;

/**
 * The app's dependencies, composed once per isolate (config cannot change without a new deployment,
 * which starts new isolates). A failed composition is not cached: the next request tries again.
 */
export function composeEdge(env: EdgeEnv): Promise<AppDeps> {
  if (!cached) {
    const p = compose(env);
    cached = p;
    p.catch(() => {
      if (cached === p) cached = undefined;
    });
  }
  return cached;
}
