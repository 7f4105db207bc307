// Composition root for Node: the ports composeCore (functions/core.ts) builds on. Redis-backed
// stores, private keys encrypted at rest in the data directory, a local admin key for `npm start`,
// pinned SchemaPin discovery, and the BullMQ jobs backend with its reconciler.
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { getConnInfo } from "@hono/node-server/conninfo";
import type { Redis } from "ioredis";
import { installNodeSha256 } from "../../platform/node/native-hash";
import {
  openPkcs11ProviderFromFile,
  type Pkcs11KeyProvider,
} from "../../platform/node/pkcs11-provider";
import type { SigilConfig } from "../../shared/config";
import { ed25519Kid, generateEd25519KeyPair, hkdfSha256, publicJwk } from "../../shared/crypto";
import { fromBase64Url, toBase64Url, utf8 } from "../../shared/encoding";
import { CachingKeyRegistry } from "../../shared/keys";
import type { Logger } from "../../shared/log";
import { RevisionCachingStore } from "../../shared/policy";
import type { BundleSource, HttpDiscoveryOptions } from "../../shared/schemapin";
import { type CoreDeps, composeCore } from "../core";
import { type DetectionLoop, startDetection } from "../incident-response";
import { createApprovals } from "../routes/approvals";
import type { HealthCheck } from "../routes/health";
import { loadComplianceFrameworks } from "./compliance-frameworks";
import { PinnedDiscoveryFetch } from "./discovery-fetch";
import { type HeldSweep, startHeldSweep } from "./jobs/held-sweep";
import { type Reconciler, startReconciler } from "./jobs/reconcile";
import { RedisJobsBackend } from "./jobs/redis-backend";
import { prometheusApiMetrics } from "./metrics";
import { type NodeSigning, nodeSigning } from "./signing";
import { RedisApprovalStore } from "./stores/approvals-redis";
import { openRedisAuditLog, type RedisAuditLog } from "./stores/audit-redis";
import { RedisReportStore } from "./stores/compliance-redis";
import { RedisIncidentStore } from "./stores/incidents-redis";
import { redisInvalidationBus } from "./stores/invalidation-redis";
import { FileSecretStore } from "./stores/key-files";
import { RedisKeyRegistry } from "./stores/keys-redis";
import { RedisRateLimiter } from "./stores/limits-redis";
import { RedisPinStore } from "./stores/pins-redis";
import { RedisPolicyStore } from "./stores/policy-redis";
import { RedisQuarantineStore } from "./stores/quarantine-redis";
import { RedisReplayCache } from "./stores/replay-redis";
import { RedisSubjectKeyStore } from "./stores/subjects-redis";

export interface NodeDeps extends CoreDeps {
  close(): Promise<void>;
}

export interface ComposeOptions {
  config: SigilConfig;
  redis: Redis;
  log: Logger;
  health: HealthCheck[];
  env?: NodeJS.ProcessEnv;
  /** Tests: accept localhost/IP SchemaPin domains mapped to local servers. */
  discovery?: HttpDiscoveryOptions;
  /** Tests: cheaper scrypt for key files. */
  scrypt?: { N: number; r: number; p: number };
  /** Start the BullMQ stalled-job reconciler (the API process should; tests may not). */
  reconcile?: boolean;
  /** Add process metrics (CPU, memory, event loop) to /metrics: once per process (main.ts). */
  processMetrics?: boolean;
  /** Sweep jobs held for approval (held-sweep.ts); default on. */
  sweepHeld?: boolean;
  /**
   * Run incident detection and response in this process (a poll loop every `[incidents]
   * poll_ms`, docs/incidents.md "Running it"); main.ts passes `[incidents] enabled`. Default off,
   * so a test composing an app does not open incidents it does not expect.
   */
  detection?: boolean;
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

/** A `[tofu] trust_bundles` entry that names a file. */
async function readBundleFile(entry: string): Promise<BundleSource> {
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
}

/**
 * The local admin key for `npm start` when no admin key is configured: read from the data
 * directory, or generated there once (0600), so the SDK's devAdminClient can use it.
 */
async function localAdminKey(
  dataDir: string,
  log: Logger,
): Promise<{ publicKey: Uint8Array; path: string }> {
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
  return { publicKey: fromBase64Url(file.publicJwk.x), path };
}

function hsmHealth(provider: Pkcs11KeyProvider): HealthCheck {
  return { name: "hsm", required: true, check: () => provider.health() };
}

export async function composeNode(opts: ComposeOptions): Promise<NodeDeps> {
  installNodeSha256();
  const { config, redis, log } = opts;
  const env = opts.env ?? process.env;
  const prefix = `${config.redis.prefix}:`;
  // Opened by the ports below, closed by close().
  const open: {
    buses: { close(): void }[];
    signing?: NodeSigning;
    auditLog?: RedisAuditLog;
    reconciler?: Reconciler;
    hsm?: Pkcs11KeyProvider;
    heldSweep?: HeldSweep;
    detection?: DetectionLoop;
  } = { buses: [] };
  // With key_store_type = "hsm": service-held keys in the PKCS#11 token hsm_config_path names.
  const hsm = async (path: string) => {
    open.hsm = await openPkcs11ProviderFromFile(path, env);
    return open.hsm;
  };

  // Custom frameworks and the retention floor: a bad file or too short a retention stops start-up
  // before anything is opened (docs/compliance.md "Custom frameworks").
  const compliance = await loadComplianceFrameworks(config);

  // GET /metrics ([metrics] enabled; docs/operating.md "Metrics and traces"); made before the
  // audit log so the sequencer can report its batches.
  const metrics = config.metrics.enabled
    ? prometheusApiMetrics({ processMetrics: opts.processMetrics === true })
    : undefined;

  const core = await composeCore(
    config,
    async () => {
      const dataDir = resolve(config.server.data_dir);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const secret = await keySecret(dataDir, env);
      // Records in Redis carry an HMAC (Redis is not trusted): nobody who can only write to Redis
      // can add an admin key, re-point a policy or change a pin. Every API node must share the
      // secret (set SIGIL_KEY_PASSPHRASE).
      const macKey = (purpose: string) =>
        hkdfSha256(utf8(secret), utf8("sigil"), utf8(purpose), 32);
      // Approvals hold across every API process; records carry a MAC (Redis is not trusted).
      const approvalStore = new RedisApprovalStore(redis, prefix, {
        macKey: macKey("approval-store-mac.v1"),
      });
      const keyBus = redisInvalidationBus(redis, `${prefix}keys:changed`);
      const policyBus = redisInvalidationBus(redis, `${prefix}policy:changed`);
      const quarantineBus = redisInvalidationBus(redis, `${prefix}quarantine:changed`);
      open.buses.push(keyBus, policyBus, quarantineBus);
      const signing = nodeSigning(config.security.crypto_provider);
      open.signing = signing;
      const replay = new RedisReplayCache(redis, { prefix });
      // SchemaPin discovery resolves names itself, refuses non-public addresses and pins the
      // connection to them.
      const discoveryFetch = new PinnedDiscoveryFetch({
        allowCidrs: config.tofu.discovery_allow_cidrs,
        resolvers: config.tofu.discovery_resolvers,
      });
      return {
        log,
        // The HSM is required: without it nothing can be signed.
        health: open.hsm ? [...opts.health, hsmHealth(open.hsm)] : opts.health,
        // Read-through cache with pub/sub invalidation (see shared/keys/cache.ts for the bounds).
        keys: new CachingKeyRegistry(
          new RedisKeyRegistry(redis, `${prefix}keys:`, { macKey: macKey("key-registry-mac.v1") }),
          { ttlMs: config.auth.key_cache_ms, bus: keyBus },
        ),
        secrets: new FileSecretStore(join(dataDir, "keys")),
        secret,
        ...(opts.scrypt ? { scrypt: opts.scrypt } : {}),
        signerFactory: signing.factory,
        localAdmin: () => localAdminKey(dataDir, log),
        replay,
        auditLog: async (signer) => {
          open.auditLog = await openRedisAuditLog({
            redis,
            nonceKey: (keyid, nonce) => replay.keyFor(keyid, nonce),
            keyPrefix: `${prefix}audit:`,
            chain: config.audit.chain,
            signer,
            durability: config.audit.durability,
            minReplicas: config.audit.min_replicas,
            replicaTimeoutMs: config.audit.replica_timeout_ms,
            ...(metrics ? { onBatch: (n, s) => metrics.auditBatch(n, s) } : {}),
          });
          return open.auditLog;
        },
        policyStore: new RevisionCachingStore(
          new RedisPolicyStore(redis, `${prefix}policy:`, {
            macKey: macKey("policy-store-mac.v1"),
          }),
          { ttlMs: config.policy.revision_cache_ms, bus: policyBus },
        ),
        pins: new RedisPinStore(redis, `${prefix}pins:`, { macKey: macKey("pin-store-mac.v1") }),
        readBundleFile,
        discovery: { fetch: discoveryFetch.fetch, ...opts.discovery },
        // Quotas hold across every API process: their buckets are in Redis.
        limiter: new RedisRateLimiter(redis, prefix),
        approvals: approvalStore,
        quarantine: new RedisQuarantineStore(redis, prefix),
        quarantineBus,
        incidents: new RedisIncidentStore(redis, prefix, {
          macKey: macKey("incident-store-mac.v1"),
        }),
        compliance: {
          reports: new RedisReportStore(redis, config.redis.prefix),
          ...compliance,
          // main.ts runs the retention sweep (audit-retention.ts).
          retentionEnforced: true,
          // The generated dev secret lives beside the key files, which then protects nothing.
          encryptionAtRest:
            env.SIGIL_KEY_PASSPHRASE !== undefined || config.security.key_store_type === "hsm",
        },
        subjects: new RedisSubjectKeyStore(redis, prefix),
        clientAddress: (c) => {
          try {
            return getConnInfo(c).remote.address;
          } catch {
            return undefined; // not served by @hono/node-server (app.request in a test)
          }
        },
        jobs: ({ audit, serviceSigner }) => {
          const jobs = new RedisJobsBackend({
            redis,
            prefix: config.redis.prefix,
            queueName: config.sandbox.queue,
            queuedJobs: config.limits.queued_jobs,
          });
          if (opts.reconcile !== false) {
            open.reconciler = startReconciler({
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
          if (opts.sweepHeld !== false) {
            // Jobs held for approval move on without a timer any process could forget.
            open.heldSweep = startHeldSweep({
              backend: jobs,
              // The workflow as the routes build it: what the sweep wins is audited and published.
              approvals: createApprovals({
                store: approvalStore,
                config,
                audit: (e, o) => audit.append(e, o),
                now: Date.now,
                signer: serviceSigner,
                log,
              }).service,
              audit: async (e) => {
                await audit.append({
                  eventType: e.eventType,
                  agentId: e.agentId ?? "system",
                  details: e.details,
                });
              },
              onError: (e) => log.warn("held job sweep error", { err: e.message }),
            });
          }
          return jobs;
        },
        // Node serves the job gateway the edge forwards to.
        jobGateway: true,
      };
    },
    hsm,
  ).catch(async (e: unknown) => {
    await open.hsm?.close();
    throw e;
  });

  if (opts.detection && core.incidentResponse)
    open.detection = startDetection(core.incidentResponse, {
      pollMs: config.incidents.poll_ms,
      log,
      appended: (wake) => core.audit.observe(wake),
    });

  return {
    ...core,
    ...(metrics ? { metrics } : {}),
    async close() {
      // First: a step under way still appends to the audit log and reads the stores.
      await open.detection?.close();
      await open.reconciler?.close?.();
      await open.heldSweep?.close();
      await (core.jobs as { close?: () => Promise<void> } | undefined)?.close?.();
      // The open windows' summaries are written before the audit log closes.
      await core.auditWindows.close();
      await open.auditLog?.close();
      for (const bus of open.buses) bus.close();
      await open.signing?.close();
      await open.hsm?.close();
    },
  };
}
