// composeCore(config, ports): everything the Node and the edge compositions do alike. A runtime's
// root (functions/node/compose.ts, functions/edge/compose.ts) provides ports (stores, the key
// secret, the audit log, fetch for discovery, quotas, jobs) and this builds the services on them:
// key manager, service key, admin keys, audit, policies, SchemaPin. One place, so the runtimes
// cannot drift apart (see docs/architecture.md "The two runtimes").
import type { Context } from "hono";
import type { ApprovalStore } from "../shared/approvals";
import { type AuditLogPort, AuditService } from "../shared/audit";
import type { SigilConfig } from "../shared/config";
import { ed25519Kid, publicKeyFromJwk, type Signer, uuidV7, verifyEd25519 } from "../shared/crypto";
import type { ReplayCache } from "../shared/httpsig";
import type { IncidentStore } from "../shared/incidents";
import type { InvalidationBus } from "../shared/invalidation";
import type { JobsBackend } from "../shared/jobs";
import {
  KeyManager,
  type KeyProvider,
  type KeyRegistry,
  KeyRegistryError,
  keyValidityResolver,
  type SecretStore,
  SoftwareKeyProvider,
  type SoftwareKeyProviderOptions,
  usableForNewRequest,
} from "../shared/keys";
import type { RateLimiter } from "../shared/limits";
import type { Logger } from "../shared/log";
import { PolicyEngine, type PolicyStorePort } from "../shared/policy";
import type { QuarantineService, QuarantineStore } from "../shared/quarantine";
import {
  type BundleSource,
  configuredResolver,
  type HttpDiscoveryOptions,
  HttpDiscoveryResolver,
  loadTrustBundles,
  type PinStore,
  ToolVerificationService,
} from "../shared/schemapin";
import { MemorySubjectKeyStore, type SubjectKeyStore, SubjectVault } from "../shared/subjects";
import type { AppDeps, ComplianceDeps } from "./app";
import { AuditWindows } from "./audit-windows";
import { type IncidentResponse, incidentResponse } from "./incident-response";
import { quarantineService } from "./quarantine";
import { quarantineJobEffects } from "./quarantine-jobs";
import { auditProblem } from "./routes/audit";
import type { HealthCheck } from "./routes/health";

/** The subject of the deployment's own key: one service key per deployment. */
export const SERVICE_SUBJECT = "sigil";

/** How long one process may hold the service-key creation lease. */
const LEASE_MS = 30_000;

/** What a runtime provides; everything else is built here. */
export interface CorePorts {
  log: Logger;
  health: HealthCheck[];
  /** Public keys with roles and status (request authentication reads them). */
  keys: KeyRegistry;
  /** Where the service-held private keys live, encrypted under `secret`. */
  secrets: SecretStore;
  secret: string;
  scrypt?: SoftwareKeyProviderOptions["scrypt"];
  signerFactory?: SoftwareKeyProviderOptions["signerFactory"];
  /**
   * Makes one process the creator of the service key when several compose at once (edge
   * isolates cold-starting together). Without it the first one to look creates it.
   */
  serviceKeyLease?: (holder: string, ttlMs: number) => Promise<boolean>;
  /**
   * A local admin key when `[auth] admin_keys` is empty (Node writes one to its data directory).
   * Without it, and no configured admin key, every admin request is refused.
   */
  localAdmin?: () => Promise<{ publicKey: Uint8Array; path: string }>;
  replay: ReplayCache;
  /** The audit log, given the service key (which seals events or names the sealing object). */
  auditLog: (service: Signer) => AuditLogPort | Promise<AuditLogPort>;
  policyStore: PolicyStorePort;
  pins: PinStore;
  /** Reads a `[tofu] trust_bundles` entry that names a file; absent: files are refused. */
  readBundleFile?: (path: string) => Promise<BundleSource>;
  /** SchemaPin discovery over the network: the runtime's fetch and the resolver's bounds. */
  discovery: HttpDiscoveryOptions;
  /** Quotas' buckets, held across every process of the deployment. */
  limiter: RateLimiter;
  /** Approval records, shared by every process of the deployment (docs/governance.md "Approvals"). */
  approvals: ApprovalStore;
  /** Quarantine records, shared by every process (docs/incidents.md "Quarantine"). */
  quarantine?: QuarantineStore;
  /** Announces quarantines placed or lifted here to the other processes' caches. */
  quarantineBus?: InvalidationBus;
  /** Incidents and emergency mode (docs/incidents.md); absent: no /v1/incidents routes. */
  incidents?: IncidentStore;
  clientAddress: (c: Context) => string | undefined;
  /** The jobs backend, if this runtime has one (it may sign with the service key). */
  jobs?: (core: { serviceSigner: Signer; audit: AuditService }) => JobsBackend | undefined;
  /** Serve the job gateway for edge deployments (where `jobs` is the real backend). */
  jobGateway?: boolean;
  /** Compliance reports' store and what the runtime claims about itself (docs/compliance.md). */
  compliance?: ComplianceDeps;
  /** Data subjects' keys (docs/data-subjects.md); default: this process's memory. */
  subjects?: SubjectKeyStore;
}

export interface CoreDeps extends AppDeps {
  auditWindows: AuditWindows;
  /** Where the local admin key was written, when `localAdmin` made one. */
  adminKeyPath?: string;
  /**
   * Detection and response (docs/incidents.md "Running it"), when there is an incident store;
   * the runtime decides when it steps (Node: a poll loop; the edge: after responses).
   */
  incidentResponse?: IncidentResponse;
}

/**
 * What a runtime that can reach a hardware security module gives (Node: the PKCS#11 provider,
 * platform/node/pkcs11-provider.ts). Opened from `[security] hsm_config_path`; it throws a message
 * naming the setting to fix when it cannot start.
 */
export type HsmProviderFactory = (hsmConfigPath: string) => Promise<KeyProvider>;

/**
 * `ports` may be a function: it is called after the checks that need no port, so a refused
 * configuration touches no key material (no secret is created, no store opened). With an HSM
 * configured, every service-held key (service key, held keys for /v1/sign) lives in the provider
 * `hsm` opens, before any port is asked for; a runtime without `hsm` refuses to start, and nothing
 * falls back to software keys (docs/architecture.md "Keys and trust").
 */
export async function composeCore(
  config: SigilConfig,
  portsOrMake: CorePorts | (() => CorePorts | Promise<CorePorts>),
  hsm?: HsmProviderFactory,
): Promise<CoreDeps> {
  let hsmProvider: KeyProvider | undefined;
  if (config.security.hsm_enabled || config.security.key_store_type === "hsm") {
    if (!hsm) {
      throw new Error(
        "hsm_enabled / key_store_type = hsm: this runtime has no PKCS#11 KeyProvider (the edge cannot load a native PKCS#11 module; run the Node API for HSM keys); refusing to fall back to software keys",
      );
    }
    const path = config.security.hsm_config_path;
    if (path === undefined)
      throw new Error("key_store_type = hsm needs [security] hsm_config_path");
    hsmProvider = await hsm(path);
  }
  const ports = typeof portsOrMake === "function" ? await portsOrMake() : portsOrMake;
  const { log, keys } = ports;

  const provider =
    hsmProvider ??
    new SoftwareKeyProvider({
      secret: ports.secret,
      store: ports.secrets,
      ...(ports.scrypt ? { scrypt: ports.scrypt } : {}),
      ...(ports.signerFactory ? { signerFactory: ports.signerFactory } : {}),
    });
  if (hsmProvider) log.info("service-held keys live in the HSM", { provider: hsmProvider.name });
  const keyManager = new KeyManager({
    registry: keys,
    provider,
    rotationIntervalDays: config.security.key_rotation_interval_days,
  });
  const serviceKid = await ensureServiceKey(keys, provider, keyManager, log, ports.serviceKeyLease);
  const serviceSigner = await keyManager.signer(serviceKid);
  const adminKeyPath = await bootstrapAdmins(config, keys, log, ports.localAdmin);

  const audit = new AuditService({
    log: await ports.auditLog(serviceSigner),
    signer: serviceSigner,
    verify: verifyEd25519,
    origin: config.audit.origin,
    keys: keyValidityResolver(keys),
  });
  // Per process: N processes write at most N summaries per window (see audit-windows.ts).
  const auditWindows = new AuditWindows({
    windowMs: config.limits.audit_window_ms,
    append: (e) => audit.append(e).catch(auditProblem),
    onError: (e) => log.error("aggregated audit event lost", { err: String(e) }),
  });

  const policies = await PolicyEngine.create({
    store: ports.policyStore,
    config: {
      mode: config.security.policy_enforcement_mode,
      classificationLevels: config.policy.classification_levels,
    },
    cache: config.policy.cache_size > 0 ? { max: config.policy.cache_size } : false,
    decisionId: uuidV7,
  });

  // SchemaPin discovery: trust bundles first (offline), then the network through the runtime's
  // fetch (docs/schemapin.md says what each runtime's fetch refuses).
  const bundles = await loadTrustBundles(
    await bundleSources(config.tofu.trust_bundles, ports.readBundleFile),
    config.tofu.bundle_authorities,
    Date.now(),
  );
  if (bundles.length > 0) {
    log.info("schemapin trust bundles loaded", {
      bundles: bundles.length,
      domains: bundles.reduce((n, b) => n + b.documents.length, 0),
    });
  }
  const tools = new ToolVerificationService({
    pins: ports.pins,
    resolver: configuredResolver({
      mode: config.tofu.discovery,
      bundles,
      network: new HttpDiscoveryResolver(ports.discovery),
    }),
    tofu: config.tofu,
    ...(ports.discovery.allowLocal ? { allowLocalDomains: true } : {}),
  });

  // Subject keys are wrapped under a key derived from the same secret as the private keys at rest
  // (the key hierarchy), also with an HSM: the subject keys are data keys, not signing keys.
  const subjects = new SubjectVault({
    store: ports.subjects ?? new MemorySubjectKeyStore(),
    secret: ports.secret,
    personalFields: config.audit.personal_fields,
  });

  const jobs = ports.jobs?.({ serviceSigner, audit });
  // A quarantine cancels its target's jobs (a worker's: re-queued, its keys suspended), once, in
  // the process whose place won (functions/quarantine-jobs.ts).
  let quarantine: QuarantineService | undefined;
  const effects = jobs
    ? quarantineJobEffects({ jobs, audit: (e) => audit.append(e), service: () => quarantine })
    : undefined;
  quarantine = ports.quarantine
    ? quarantineService({
        store: ports.quarantine,
        ...(ports.quarantineBus ? { bus: ports.quarantineBus } : {}),
        ttlMs: config.auth.key_cache_ms,
        audit: (e) => audit.append(e),
        ...(effects ?? {}),
      })
    : undefined;
  const incidents = ports.incidents
    ? incidentResponse({
        config,
        store: ports.incidents,
        audit,
        signer: serviceSigner,
        keyManager,
        ...(quarantine ? { quarantine } : {}),
        log,
      })
    : undefined;
  return {
    config,
    log,
    health: ports.health,
    keys,
    keyManager,
    replay: ports.replay,
    serviceSigner,
    audit,
    auditWindows,
    policies,
    tools,
    ...(jobs ? { jobs } : {}),
    ...(jobs && ports.jobGateway ? { jobGateway: true } : {}),
    limiter: ports.limiter,
    approvals: ports.approvals,
    ...(quarantine ? { quarantine } : {}),
    ...(ports.incidents ? { incidents: ports.incidents } : {}),
    clientAddress: ports.clientAddress,
    ...(ports.compliance ? { compliance: ports.compliance } : {}),
    subjects,
    ...(adminKeyPath ? { adminKeyPath } : {}),
    ...(incidents ? { incidentResponse: incidents } : {}),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The usable service key whose private half this provider holds; creates one if there is none
 * (under the lease, when the runtime has one). A registered service key that is not usable here
 * (its private half elsewhere, or expired) is named in a warning and left as it is.
 */
async function ensureServiceKey(
  keys: KeyRegistry,
  provider: KeyProvider,
  manager: KeyManager,
  log: Logger,
  lease: CorePorts["serviceKeyLease"],
): Promise<string> {
  const holder = crypto.randomUUID();
  const deadline = Date.now() + LEASE_MS + 5_000;
  const find = async () => {
    const held = new Set(await provider.listKeys());
    const now = Date.now();
    const registered = (await keys.list("service")).filter(
      (r) => r.status === "active" && r.subject === SERVICE_SUBJECT,
    );
    return {
      registered,
      usable: registered.find((r) => usableForNewRequest(r, now) && held.has(r.kid)),
    };
  };
  while (Date.now() < deadline) {
    const found = await find();
    if (found.usable) return found.usable.kid;
    if (!lease || (await lease(holder, LEASE_MS))) {
      const again = await find();
      if (again.usable) return again.usable.kid;
      if (again.registered.length > 0) {
        log.warn(
          "no registered service key is usable here (its private half is elsewhere, or it expired); creating a new one",
          { registered: again.registered.map((r) => r.kid) },
        );
      }
      const created = await manager.createKey({ role: "service", subject: SERVICE_SUBJECT });
      log.info("created the service signing key", { kid: created.record.kid });
      return created.record.kid;
    }
    await sleep(100 + Math.random() * 200);
  }
  throw new Error("no service key: another process holds the creation lease and has not finished");
}

/**
 * Registers the configured admin keys, each checked to be named by its RFC 7638 thumbprint. With
 * none configured, the runtime's local admin key if it makes one; otherwise no admin key exists and
 * every admin request is refused (401 key-unknown): a runtime never invents an admin credential
 * it cannot hand to its operator.
 */
async function bootstrapAdmins(
  config: SigilConfig,
  registry: KeyRegistry,
  log: Logger,
  localAdmin: CorePorts["localAdmin"],
): Promise<string | undefined> {
  const register = async (publicKey: Uint8Array, subject: string) => {
    if (await registry.get(ed25519Kid(publicKey))) return;
    try {
      await registry.register({ role: "admin", subject, publicKey, createdAt: Date.now() });
    } catch (e) {
      // Another process registered it first.
      if (!(e instanceof KeyRegistryError && e.code === "exists")) throw e;
    }
  };
  if (config.auth.admin_keys.length > 0) {
    for (const jwk of config.auth.admin_keys) {
      const pk = publicKeyFromJwk(jwk);
      if (ed25519Kid(pk) !== jwk.kid) {
        throw new Error(
          `SIGIL_ADMIN_KEYS: kid ${jwk.kid} is not the RFC 7638 thumbprint of its key (${ed25519Kid(pk)})`,
        );
      }
      await register(pk, `admin:${jwk.kid.slice(0, 8)}`);
    }
    return undefined;
  }
  if (!localAdmin) {
    log.warn("no SIGIL_ADMIN_KEYS configured: admin routes refuse every request");
    return undefined;
  }
  const local = await localAdmin();
  await register(local.publicKey, "admin:local");
  return local.path;
}

/** `[tofu] trust_bundles`: inline bundles are taken as they are, file paths read by the runtime. */
function bundleSources(
  entries: SigilConfig["tofu"]["trust_bundles"],
  readFile: CorePorts["readBundleFile"],
): Promise<BundleSource[]> {
  return Promise.all(
    entries.map(async (entry, i): Promise<BundleSource> => {
      if (typeof entry !== "string") return { source: `trust_bundles[${i}]`, raw: entry };
      if (!readFile) {
        throw new Error(
          `[tofu] trust_bundles[${i}]: this runtime has no files to read; give the bundle's JSON itself`,
        );
      }
      return readFile(entry);
    }),
  );
}
