// Composition root for the edge (workerd): Durable Object adapters for every port, the service key
// (encrypted at rest in the KeysObject), the admin bootstrap from SIGIL_ADMIN_KEYS, and everything
// createApp needs. The model is functions/node/compose.ts; the differences are documented inline.
import { AuditService } from "../../shared/audit";
import { allowedAuthorities, loadConfig, type SigilConfig } from "../../shared/config";
import { ed25519Kid, publicKeyFromJwk, uuidV7, verifyEd25519 } from "../../shared/crypto";
import {
  KeyManager,
  type KeyRegistry,
  KeyRegistryError,
  keyValidityResolver,
  SoftwareKeyProvider,
  usableForNewRequest,
} from "../../shared/keys";
import { PolicyEngine } from "../../shared/policy";
import {
  configuredResolver,
  HttpDiscoveryResolver,
  loadTrustBundles,
  ToolVerificationService,
} from "../../shared/schemapin";
import type { AppDeps } from "../app";
import { jsonLogger, type Logger } from "../middleware/logger";
import type { HealthCheck } from "../routes/health";
import { DoApprovalStore } from "./approvals/adapter";
import { DoAuditLog } from "./audit/adapter";
import { APPROVALS_OBJECT, KEYS_OBJECT, POLICIES_OBJECT } from "./constants";
import { type EdgeEnv, stringVars } from "./env";
import { GatewayJobsBackend } from "./jobs/gateway";
import { DoKeyRegistry, DoSecretStore } from "./keys/adapter";
import type { KeysObject } from "./keys/object";
import { EDGE_SCRYPT, edgeKeySecret } from "./keys/secret";
import { DoRateLimiter } from "./limits/adapter";
import { DoPinStore } from "./pins/adapter";
import { DoPolicyStore } from "./policy/adapter";
import { DoReplayCache } from "./replay/adapter";
import { unwrap } from "./rpc";
import { type StubSource, stubFor, stubSource } from "./runtime";

/** Same subject as on Node: one service key per deployment. */
export const SERVICE_SUBJECT = "sigil";
const LEASE_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The active service key whose private half the provider holds; creates one if there is none. A
 * lease in the KeysObject makes one isolate the creator when several cold-start at once (Node has
 * one process per data directory and needs none).
 */
async function ensureServiceKey(
  keys: KeyRegistry,
  provider: SoftwareKeyProvider,
  manager: KeyManager,
  keysObject: StubSource<KeysObject>,
  log: Logger,
): Promise<string> {
  const holder = crypto.randomUUID();
  const deadline = Date.now() + LEASE_MS + 5_000;
  const find = async () => {
    const held = new Set(await provider.listKeys());
    const now = Date.now();
    return (await keys.list("service")).find(
      (r) => r.subject === SERVICE_SUBJECT && usableForNewRequest(r, now) && held.has(r.kid),
    );
  };
  while (Date.now() < deadline) {
    const found = await find();
    if (found) return found.kid;
    if (unwrap(await keysObject().lease("service-key", holder, LEASE_MS))) {
      const again = await find();
      if (again) return again.kid;
      const created = await manager.createKey({ role: "service", subject: SERVICE_SUBJECT });
      log.info("created the service signing key", { kid: created.record.kid });
      return created.record.kid;
    }
    await sleep(100 + Math.random() * 200);
  }
  throw new Error("no service key: another isolate holds the creation lease and has not finished");
}

/**
 * Registers the configured admin keys. Unlike Node there is no data directory to write a generated
 * dev admin key to, so with no SIGIL_ADMIN_KEYS no admin key exists and every admin request is
 * refused (401 key-unknown): the edge never invents an admin credential.
 */
async function bootstrapAdmins(
  config: SigilConfig,
  registry: KeyRegistry,
  log: Logger,
): Promise<void> {
  if (config.auth.admin_keys.length === 0) {
    log.warn("no SIGIL_ADMIN_KEYS configured: admin routes refuse every request on the edge");
    return;
  }
  for (const jwk of config.auth.admin_keys) {
    const pk = publicKeyFromJwk(jwk);
    if (ed25519Kid(pk) !== jwk.kid) {
      throw new Error(
        `SIGIL_ADMIN_KEYS: kid ${jwk.kid} is not the RFC 7638 thumbprint of its key (${ed25519Kid(pk)})`,
      );
    }
    if (await registry.get(jwk.kid)) continue;
    try {
      await registry.register({
        role: "admin",
        subject: `admin:${jwk.kid.slice(0, 8)}`,
        publicKey: pk,
        createdAt: Date.now(),
      });
    } catch (e) {
      // Another isolate registered it first.
      if (!(e instanceof KeyRegistryError && e.code === "exists")) throw e;
    }
  }
}

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
] as const;

async function compose(env: EdgeEnv): Promise<AppDeps> {
  for (const b of BINDINGS) {
    if (typeof (env as Record<string, unknown>)[b] !== "object")
      throw new Error(`missing Durable Object binding ${b}`);
  }
  // Worker vars and secrets are the environment; the same names as on Node (SIGIL_*, SYMBIONT_*).
  const config = loadConfig({ env: stringVars(env) });
  const log = jsonLogger(config.server.log_level);
  if (config.security.hsm_enabled || config.security.key_store_type === "hsm") {
    throw new Error(
      "hsm_enabled / key_store_type = hsm: no PKCS#11 KeyProvider ships in this build; refusing to fall back to software keys",
    );
  }

  if (config.auth.allowed_authorities.length === 0) {
    // A Worker does not know the host it is reached under: by default it answers for its
    // configured server host:port (wrangler dev's 127.0.0.1:8787) only, which fails closed.
    log.warn(
      "no SIGIL_AUTH_ALLOWED_AUTHORITIES: requests are accepted only when signed for the configured server host:port; set it to the Worker's public host",
      { authorities: allowedAuthorities(config) },
    );
  }

  const keysObject = stubSource(env.SIGIL_KEYS, KEYS_OBJECT);
  const keys = new DoKeyRegistry(keysObject);
  const { secret, generated } = await edgeKeySecret(env, keysObject);
  if (generated) {
    log.warn(
      "no SIGIL_KEY_PASSPHRASE: private keys are encrypted under a dev secret kept in Durable Object storage; set it as a Worker secret in production",
    );
  }
  const provider = new SoftwareKeyProvider({
    secret,
    store: new DoSecretStore(keysObject),
    scrypt: EDGE_SCRYPT,
  });
  const keyManager = new KeyManager({
    registry: keys,
    provider,
    rotationIntervalDays: config.security.key_rotation_interval_days,
  });
  const serviceKid = await ensureServiceKey(keys, provider, keyManager, keysObject, log);
  const serviceSigner = await keyManager.signer(serviceKid);
  await bootstrapAdmins(config, keys, log);

  const chain = config.audit.chain;
  const auditLog = new DoAuditLog({
    object: stubSource(env.SIGIL_AUDIT, chain),
    chain,
    kid: serviceKid,
  });
  const audit = new AuditService({
    log: auditLog,
    signer: serviceSigner,
    verify: verifyEd25519,
    origin: config.audit.origin,
    keys: keyValidityResolver(keys),
  });

  const policies = await PolicyEngine.create({
    store: new DoPolicyStore(stubSource(env.SIGIL_POLICIES, POLICIES_OBJECT)),
    config: {
      mode: config.security.policy_enforcement_mode,
      classificationLevels: config.policy.classification_levels,
    },
    cache: config.policy.cache_size > 0 ? { max: config.policy.cache_size } : false,
    decisionId: uuidV7,
  });

  // SchemaPin discovery. Trust bundles come inline (a Worker var or secret holding the JSON, e.g.
  // SIGIL_TOFU_TRUST_BUNDLES): there are no files to read. workerd has no DNS API, so the edge
  // cannot resolve a name, check its addresses or pin a connection; what it can do is refuse by
  // name (the shared resolver never fetches an IP literal in any notation, localhost or a
  // special-use name, and follows no redirect off the origin). In production the platform's fetch
  // runs on Cloudflare's network, not inside the operator's, so private addresses there do not
  // reach the deployment's network; `wrangler dev` fetches from the local machine. Deployments that
  // need the guarantee regardless set `[tofu] discovery = "bundles-only"`.
  const bundles = await loadTrustBundles(
    config.tofu.trust_bundles.map((b, i) => {
      if (typeof b === "string") {
        throw new Error(
          `[tofu] trust_bundles[${i}]: the edge has no files to read; give the bundle's JSON itself`,
        );
      }
      return { source: `trust_bundles[${i}]`, raw: b };
    }),
    config.tofu.bundle_authorities,
    Date.now(),
  );
  if (
    config.tofu.discovery === "network" &&
    (config.tofu.discovery_allow_cidrs.length > 0 || config.tofu.discovery_resolvers.length > 0)
  ) {
    log.warn(
      "[tofu] discovery_allow_cidrs and discovery_resolvers have no effect on the edge: the platform's fetch resolves names itself",
    );
  }
  const tools = new ToolVerificationService({
    pins: new DoPinStore(env.SIGIL_PINS),
    resolver: configuredResolver({
      mode: config.tofu.discovery,
      bundles,
      network: new HttpDiscoveryResolver({ fetch: (url, init) => fetch(url, init) }),
    }),
    tofu: config.tofu,
  });

  const gateway = config.sandbox.gateway_url;
  return {
    config,
    log,
    health: healthChecks(env, chain),
    keys,
    keyManager,
    replay: new DoReplayCache(env.SIGIL_REPLAY),
    // Approvals hold across every isolate: one ApprovalsObject holds them all.
    approvals: new DoApprovalStore(stubSource(env.SIGIL_APPROVALS, APPROVALS_OBJECT)),
    // Quotas hold across every isolate: one LimitsObject per subject holds its buckets.
    limiter: new DoRateLimiter(env.SIGIL_LIMITS),
    // Set by Cloudflare on every request (a client cannot forge it there).
    clientAddress: (c) => c.req.header("cf-connecting-ip"),
    serviceSigner,
    audit,
    policies,
    tools,
    ...(gateway
      ? { jobs: new GatewayJobsBackend({ baseUrl: gateway, signer: serviceSigner }) }
      : {}),
  };
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
