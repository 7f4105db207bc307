// Composition root for Node: Redis-backed ports, the service key (encrypted at rest in the data
// directory), the admin bootstrap, and everything createApp needs.
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Redis } from "ioredis";
import { AuditService } from "../../shared/audit";
import type { SigilConfig } from "../../shared/config";
import {
  ed25519Kid,
  generateEd25519KeyPair,
  hkdfSha256,
  publicJwk,
  publicKeyFromJwk,
  uuidV7,
  verifyEd25519,
} from "../../shared/crypto";
import { fromBase64Url, toBase64Url, utf8 } from "../../shared/encoding";
import {
  CachingKeyRegistry,
  KeyManager,
  type KeyRegistry,
  keyValidityResolver,
  SoftwareKeyProvider,
} from "../../shared/keys";
import { PolicyEngine, RevisionCachingStore } from "../../shared/policy";
import {
  type BundleSource,
  configuredResolver,
  HttpDiscoveryResolver,
  loadTrustBundles,
  ToolVerificationService,
} from "../../shared/schemapin";
import type { AppDeps } from "../app";
import { AuditWindows } from "../audit-windows";
import type { Logger } from "../middleware/logger";
import { auditProblem } from "../routes/audit";
import type { HealthCheck } from "../routes/health";
import { PinnedDiscoveryFetch } from "./discovery-fetch";
import { type Reconciler, startReconciler } from "./jobs/reconcile";
import { RedisJobsBackend } from "./jobs/redis-backend";
import { installNodeSha256 } from "./native-hash";
import { nodeSigning } from "./signing";
import { RedisApprovalStore } from "./stores/approvals-redis";
import { openRedisAuditLog, type RedisAuditLog } from "./stores/audit-redis";
import { redisInvalidationBus } from "./stores/invalidation-redis";
import { FileSecretStore } from "./stores/key-files";
import { RedisKeyRegistry } from "./stores/keys-redis";
import { RedisRateLimiter } from "./stores/limits-redis";
import { RedisPinStore } from "./stores/pins-redis";
import { RedisPolicyStore } from "./stores/policy-redis";
import { RedisReplayCache } from "./stores/replay-redis";

export const SERVICE_SUBJECT = "sigil";

export interface NodeDeps extends AppDeps {
  close(): Promise<void>;
  adminKeyPath?: string;
}

export interface ComposeOptions {
  config: SigilConfig;
  redis: Redis;
  log: Logger;
  health: HealthCheck[];
  env?: NodeJS.ProcessEnv;
  /** Tests: accept localhost/IP SchemaPin domains mapped to local servers. */
  discovery?: ConstructorParameters<typeof HttpDiscoveryResolver>[0];
  /** Tests: cheaper scrypt for key files. */
  scrypt?: { N: number; r: number; p: number };
  /** Start the BullMQ stalled-job reconciler (the API process should; tests may not). */
  reconcile?: boolean;
}

/**
 * The secret that encrypts private keys at rest: SIGIL_KEY_PASSPHRASE, else a random one created
 * once in the data directory (0600). Production should set the passphrase (or use an HSM provider)
 * so the key files alone are useless.
 */
async function keySecret(dataDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  if (env.SIGIL_KEY_PASSPHRASE) return env.SIGIL_KEY_PASSPHRASE;
  const path = join(dataDir, "master.secret");
  try {
    return (await readFile(path, "utf8")).trim();
  } catch {
    const secret = randomBytes(32).toString("base64url");
    await writeFile(path, `${secret}\n`, { mode: 0o600, flag: "wx" }).catch(
      async (e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e;
      },
    );
    return (await readFile(path, "utf8")).trim();
  }
}

/** A bundle file larger than this is refused (bundles list keys, not payloads). */
const MAX_BUNDLE_FILE = 8 * 1024 * 1024;

/** `[tofu] trust_bundles`: file paths are read here, inline bundles are taken as they are. */
async function bundleSources(
  entries: SigilConfig["tofu"]["trust_bundles"],
): Promise<BundleSource[]> {
  return Promise.all(
    entries.map(async (entry, i): Promise<BundleSource> => {
      if (typeof entry !== "string") return { source: `trust_bundles[${i}]`, raw: entry };
      const path = resolve(entry);
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (e) {
        throw new Error(`[tofu] trust_bundles: cannot read ${path}: ${(e as Error).message}`);
      }
      if (text.length > MAX_BUNDLE_FILE) {
        throw new Error(`[tofu] trust_bundles: ${path} is larger than ${MAX_BUNDLE_FILE} bytes`);
      }
      try {
        return { source: path, raw: JSON.parse(text) };
      } catch {
        throw new Error(`[tofu] trust_bundles: ${path} is not JSON`);
      }
    }),
  );
}

/** Registers configured admin keys; with none, creates a local dev admin key in the data dir. */
async function bootstrapAdmins(
  config: SigilConfig,
  registry: KeyRegistry,
  dataDir: string,
  log: Logger,
): Promise<string | undefined> {
  const register = async (publicKey: Uint8Array, subject: string) => {
    const existing = await registry.get(ed25519Kid(publicKey));
    if (!existing)
      await registry.register({ role: "admin", subject, publicKey, createdAt: Date.now() });
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
  const path = join(dataDir, "admin-key.json");
  let file: { kid: string; secretKey: string; publicJwk: { x: string } };
  try {
    file = JSON.parse(await readFile(path, "utf8"));
  } catch {
    const kp = await generateEd25519KeyPair();
    const kid = ed25519Kid(kp.publicKey);
    file = {
      kid,
      secretKey: toBase64Url(kp.secretKey),
      publicJwk: publicJwk(kp.publicKey, { kid }),
    };
    await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    log.info("generated a local admin key (no SIGIL_ADMIN_KEYS configured)", { path });
  }
  await chmod(path, 0o600);
  await register(fromBase64Url(file.publicJwk.x), "admin:local");
  return path;
}

export async function composeNode(opts: ComposeOptions): Promise<NodeDeps> {
  installNodeSha256();
  const { config, redis, log } = opts;
  const env = opts.env ?? process.env;
  if (config.security.hsm_enabled || config.security.key_store_type === "hsm") {
    throw new Error(
      "hsm_enabled / key_store_type = hsm: no PKCS#11 KeyProvider ships in this build; refusing to fall back to software keys",
    );
  }
  const dataDir = resolve(config.server.data_dir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const prefix = `${config.redis.prefix}:`;

  const secret = await keySecret(dataDir, env);
  // Key records in Redis carry an HMAC (Redis is not trusted): nobody who can only write to Redis
  // can add an admin key. Every API node must share the secret (set SIGIL_KEY_PASSPHRASE).
  const macKey = hkdfSha256(utf8(secret), utf8("sigil"), utf8("key-registry-mac.v1"), 32);
  const keyBus = redisInvalidationBus(redis, `${prefix}keys:changed`);
  // Read-through cache with pub/sub invalidation (see shared/keys/cache.ts for the bounds).
  const keys = new CachingKeyRegistry(new RedisKeyRegistry(redis, `${prefix}keys:`, { macKey }), {
    ttlMs: config.auth.key_cache_ms,
    bus: keyBus,
  });
  const signing = nodeSigning(config.security.crypto_provider);
  const provider = new SoftwareKeyProvider({
    secret,
    store: new FileSecretStore(join(dataDir, "keys")),
    ...(opts.scrypt ? { scrypt: opts.scrypt } : {}),
    signerFactory: signing.factory,
  });
  const keyManager = new KeyManager({
    registry: keys,
    provider,
    rotationIntervalDays: config.security.key_rotation_interval_days,
  });

  // The service key: one per deployment, held by this data directory's provider.
  const held = new Set(await provider.listKeys());
  const services = (await keys.list("service")).filter(
    (r) => r.status === "active" && r.subject === SERVICE_SUBJECT,
  );
  let service = services.find((r) => held.has(r.kid));
  if (!service) {
    if (services.length > 0) {
      log.warn(
        "the registered service key's private half is not in this data directory; creating a new one",
        {
          registered: services.map((r) => r.kid),
          dataDir,
        },
      );
    }
    service = (await keyManager.createKey({ role: "service", subject: SERVICE_SUBJECT })).record;
    log.info("created the service signing key", { kid: service.kid });
  }
  const serviceSigner = await keyManager.signer(service.kid);
  const adminKeyPath = await bootstrapAdmins(config, keys, dataDir, log);

  const replay = new RedisReplayCache(redis, { prefix });
  const auditLog: RedisAuditLog = await openRedisAuditLog({
    redis,
    nonceKey: (keyid, nonce) => replay.keyFor(keyid, nonce),
    keyPrefix: `${prefix}audit:`,
    chain: config.audit.chain,
    signer: serviceSigner,
  });
  const audit = new AuditService({
    log: auditLog,
    signer: serviceSigner,
    verify: verifyEd25519,
    origin: config.audit.origin,
    keys: keyValidityResolver(keys),
  });

  // Per process: N API processes write at most N summaries per window (see audit-windows.ts);
  // close() writes the open windows' summaries before the audit log closes.
  const auditWindows = new AuditWindows({
    windowMs: config.limits.audit_window_ms,
    append: (e) => audit.append(e).catch(auditProblem),
    onError: (e) => log.error("aggregated audit event lost", { err: String(e) }),
  });

  const policyBus = redisInvalidationBus(redis, `${prefix}policy:changed`);
  const policies = await PolicyEngine.create({
    store: new RevisionCachingStore(
      new RedisPolicyStore(redis, `${prefix}policy:`, {
        macKey: hkdfSha256(utf8(secret), utf8("sigil"), utf8("policy-store-mac.v1"), 32),
      }),
      { ttlMs: config.policy.revision_cache_ms, bus: policyBus },
    ),
    config: {
      mode: config.security.policy_enforcement_mode,
      classificationLevels: config.policy.classification_levels,
    },
    cache: config.policy.cache_size > 0 ? { max: config.policy.cache_size } : false,
    decisionId: uuidV7,
  });

  // SchemaPin discovery: trust bundles first (offline), then the network through a fetch that
  // resolves names itself, refuses non-public addresses and pins the connection to them.
  const bundles = await loadTrustBundles(
    await bundleSources(config.tofu.trust_bundles),
    config.tofu.bundle_authorities,
    Date.now(),
  );
  if (bundles.length > 0) {
    log.info("schemapin trust bundles loaded", {
      bundles: bundles.length,
      domains: bundles.reduce((n, b) => n + b.documents.length, 0),
    });
  }
  const discoveryFetch = new PinnedDiscoveryFetch({
    allowCidrs: config.tofu.discovery_allow_cidrs,
    resolvers: config.tofu.discovery_resolvers,
  });
  const tools = new ToolVerificationService({
    pins: new RedisPinStore(redis, `${prefix}pins:`, {
      macKey: hkdfSha256(utf8(secret), utf8("sigil"), utf8("pin-store-mac.v1"), 32),
    }),
    resolver: configuredResolver({
      mode: config.tofu.discovery,
      bundles,
      network: new HttpDiscoveryResolver({ fetch: discoveryFetch.fetch, ...opts.discovery }),
    }),
    tofu: config.tofu,
    ...(opts.discovery?.allowLocal ? { allowLocalDomains: true } : {}),
  });

  const jobs = new RedisJobsBackend({
    redis,
    prefix: config.redis.prefix,
    queueName: config.sandbox.queue,
    queuedJobs: config.limits.queued_jobs,
  });
  let reconciler: Reconciler | undefined;
  if (opts.reconcile !== false) {
    reconciler = startReconciler({
      redis,
      prefix: config.redis.prefix,
      queueName: config.sandbox.queue,
      backend: jobs,
      audit: async (e) => {
        await audit.append({
          eventType: e.eventType,
          agentId: e.agentId ?? "system",
          details: e.details,
        });
      },
      onError: (e) => log.warn("job reconciler error", { err: e.message }),
    });
  }

  return {
    config,
    log,
    health: opts.health,
    keys,
    keyManager,
    replay,
    serviceSigner,
    audit,
    policies,
    tools,
    jobs,
    jobGateway: true,
    // Approvals hold across every API process; records carry a MAC (Redis is not trusted).
    approvals: new RedisApprovalStore(redis, prefix, {
      macKey: hkdfSha256(utf8(secret), utf8("sigil"), utf8("approval-store-mac.v1"), 32),
    }),
    // Quotas hold across every API process: their buckets are in Redis.
    limiter: new RedisRateLimiter(redis, prefix),
    auditWindows,
    clientAddress: (c) => {
      try {
        return getConnInfo(c).remote.address;
      } catch {
        return undefined; // not served by @hono/node-server (app.request in a test)
      }
    },
    ...(adminKeyPath ? { adminKeyPath } : {}),
    async close() {
      await reconciler?.close?.();
      await (jobs as { close?: () => Promise<void> }).close?.();
      await auditWindows.close();
      await auditLog.close();
      keyBus.close();
      policyBus.close();
      await signing.close();
    },
  };
}
