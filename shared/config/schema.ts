// One schema for every setting. Defaults are the secure ones (docs/architecture.md invariant 2):
// strict enforcement, gVisor as the default tier, no network, no silent TOFU pinning.
import { z } from "zod";
import { DEFAULT_LIMITS, DEFAULT_TIMEOUT_MS, LIMIT_BOUNDS } from "../jobs/bounds";
import { parseException, subnetPoolProblem } from "../jobs/egress";
import { cidrProblem, parseResolverAddress } from "../schemapin/addresses";

const MiB = 1024 * 1024;

const jwk = z
  .object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string(), kid: z.string() })
  .loose();

export const securitySchema = z.strictObject({
  // "ring" is the security model's Rust provider; here it names the same native (OpenSSL via
  // Web Crypto) provider as "webcrypto". "noble" forces the pure-JS reference implementation.
  crypto_provider: z.enum(["webcrypto", "ring", "noble"]).default("webcrypto"),
  signature_algorithm: z.enum(["ed25519"]).default("ed25519"),
  encryption_algorithm: z.enum(["chacha20_poly1305", "aes_256_gcm"]).default("chacha20_poly1305"),
  key_store_type: z.enum(["software", "hsm"]).default("software"),
  key_rotation_interval_days: z.number().int().min(1).max(3650).default(90),
  hsm_enabled: z.boolean().default(false),
  hsm_config_path: z.string().min(1).optional(),
  // Sigil never runs without its audit trail (invariant 3), so `false` is refused, not ignored.
  audit_enabled: z
    .boolean()
    .default(true)
    .refine((v) => v, "audit cannot be disabled: every security-relevant operation is audited"),
  audit_storage_path: z.string().min(1).default("./.sigil/audit"),
  audit_retention_days: z.number().int().min(1).max(36500).default(2555),
  audit_compression: z.boolean().default(false),
  default_sandbox_tier: z.enum(["docker", "gvisor"]).default("gvisor"),
  sandbox_escape_detection: z.boolean().default(true),
  resource_limit_enforcement: z.enum(["strict", "permissive"]).default("strict"),
  tls_min_version: z.enum(["1.2", "1.3"]).default("1.3"),
  certificate_pinning: z.boolean().default(false),
  network_isolation: z.boolean().default(true),
  policy_enforcement_mode: z.enum(["strict", "permissive"]).default("strict"),
  // How far incident response goes on a policy-violation burst (docs/incidents.md): log (record
  // the incident only), alert (plus the alert webhooks), block (plus isolating the subject when
  // the burst reaches high). The older names stay accepted: deny = log, deny_and_alert and
  // alert = alert. The request itself is denied by the policy whatever this says.
  policy_violation_action: z
    .enum(["log", "alert", "block", "deny", "deny_and_alert"])
    .default("deny_and_alert"),
  emergency_override_enabled: z.boolean().default(false),
});

const cidrText = z.string().superRefine((v, ctx) => {
  const problem = cidrProblem(v);
  if (problem) ctx.addIssue({ code: "custom", message: `"${v.slice(0, 64)}": ${problem}` });
});

export const tofuSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    key_verification_required: z.boolean().default(true),
    trust_on_first_use_timeout_hours: z.number().min(0).max(8760).default(24),
    automatic_key_pinning: z.boolean().default(false),
    // docs/schemapin.md. "bundles-only": never fetch, provider
    // keys come from trust bundles alone (air-gapped deployments).
    discovery: z.enum(["network", "bundles-only"]).default("network"),
    // Non-public addresses discovery may connect to all the same (tests, private deployments).
    // Default none: loopback, private, link-local, CGNAT, metadata and this host's addresses are
    // refused. Unspecified, multicast, broadcast and reserved space stay refused whatever this
    // says, and a cloud metadata address only passes when an entry names exactly that address.
    discovery_allow_cidrs: z.array(cidrText).max(64).default([]),
    // DNS servers that resolve provider names ("ip", "ip:port", "[v6]:port"). Empty: the system
    // resolver. Node only: the edge platform's fetch resolves names itself.
    discovery_resolvers: z
      .array(
        z
          .string()
          .refine(
            (v) => parseResolverAddress(v) !== null,
            'an IP address, "ip:port" or "[v6]:port"',
          ),
      )
      .max(8)
      .default([]),
    // Signed trust bundles consulted before the network: file paths (Node) or the bundle JSON
    // itself (both; the only form on the edge). A bundle that does not verify stops start-up.
    trust_bundles: z
      .array(z.union([z.string().min(1), z.record(z.string(), z.unknown())]))
      .max(64)
      .default([]),
    // Keys whose trust bundles we accept: `sha256:<hex>` SPKI fingerprints or PEM public keys.
    bundle_authorities: z
      .array(
        z
          .string()
          .refine(
            (v) =>
              /^sha256:[0-9a-f]{64}$/.test(v) || v.trim().startsWith("-----BEGIN PUBLIC KEY-----"),
            "a sha256:<64 hex> fingerprint or a PEM public key",
          ),
      )
      .max(64)
      .default([]),
  })
  .refine((t) => t.trust_bundles.length === 0 || t.bundle_authorities.length > 0, {
    message: "trust_bundles need bundle_authorities (the keys that sign them)",
    path: ["trust_bundles"],
  });

/** Where a worker reports when nothing else is configured: the API's default address. */
export const DEFAULT_API_URL = "http://127.0.0.1:8787";

export const serverSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).default(8787),
  host: z.string().min(1).default("127.0.0.1"),
  data_dir: z.string().min(1).default("./.sigil"),
  body_limit_bytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * MiB)
    .default(MiB),
  log_level: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export const authSchema = z.strictObject({
  clock_skew_seconds: z.number().int().min(1).max(3600).default(300),
  // The host[:port] values clients sign as @authority. Empty means this service's own: server
  // host:port, plus localhost/127.0.0.1/[::1] with that port (see allowedAuthorities). Set it to
  // the public host[:port] when clients reach the service under another name (a proxy, the edge).
  allowed_authorities: z.array(z.string().min(1)).default([]),
  admin_keys: z.array(jwk).default([]),
  // How long a key record may be served from a node's cache. Changes made through this node apply
  // at once, through another node within a pub/sub message; this bounds the case of a lost one.
  key_cache_ms: z.number().int().min(0).max(60_000).default(1000),
});

export const redisSchema = z.strictObject({
  url: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .default("redis://127.0.0.1:6379"),
  prefix: z.string().min(1).max(64).default("sigil"),
  // Sentinel (docs/deployment.md): set, the client asks these sentinels for `master_name`'s
  // primary and follows a failover; `url` then only supplies the scheme (TLS) and credentials.
  sentinels: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be "host:port"')).default([]),
  master_name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default("sigil"),
  sentinel_username: z.string().min(1).optional(),
  sentinel_password: z.string().min(1).optional(),
  // This component's ACL user (docs/deployment.md "Least privilege"); each process sets its own,
  // usually through SIGIL_REDIS_USERNAME / SIGIL_REDIS_PASSWORD. Wins over credentials in `url`.
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  // PEM CA bundle for rediss:// (and for sentinels when the url is rediss://).
  tls_ca_file: z.string().min(1).optional(),
});

export const policySchema = z.strictObject({
  classification_levels: z
    .array(z.string().min(1))
    .min(2)
    .refine((l) => new Set(l).size === l.length, "levels must be distinct")
    .default(["public", "internal", "confidential", "secret", "top_secret"]),
  cache_size: z.number().int().min(0).max(1_000_000).default(10_000),
  // How long a node may evaluate without re-reading the policy store's revision. Writes through
  // this node apply at once, through another node within a pub/sub message; this bounds the case
  // of a lost one.
  revision_cache_ms: z.number().int().min(0).max(60_000).default(1000),
});

export const riskSchema = z
  .strictObject({
    medium_threshold: z.number().gt(0).lt(1).default(0.3),
    high_threshold: z.number().gt(0).lt(1).default(0.7),
  })
  .refine((r) => r.medium_threshold < r.high_threshold, {
    message: "medium_threshold must be below high_threshold",
    path: ["medium_threshold"],
  });

export const auditSchema = z.strictObject({
  chain: z
    .string()
    .regex(/^[a-z0-9_-]{1,64}$/)
    .default("default"),
  origin: z.string().min(1).default("sigil.local/audit"),
  // `fsync`: acknowledged once the primary applied (and, with appendfsync always, fsynced) it.
  // `replicated`: also once WAIT confirms `min_replicas` replicas hold it, so a Sentinel failover
  // loses no acknowledged event (docs/deployment.md "Durability under failover").
  durability: z.enum(["fsync", "replicated"]).default("fsync"),
  min_replicas: z.number().int().min(1).max(16).default(1),
  // How long an append waits for WAIT's replicas before it fails closed.
  replica_timeout_ms: z.number().int().min(10).max(60_000).default(2000),
  // Top-level details fields of client-appended events sealed per data subject beside
  // `details.subject`, which always is (docs/data-subjects.md).
  personal_fields: z
    .array(
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, "a personal field is a top-level details key"),
    )
    .max(32)
    .refine((a) => new Set(a).size === a.length, "personal_fields must not repeat a field")
    .default([]),
});

export const sandboxSchema = z
  .strictObject({
    images: z.array(z.string().min(1)).default(["sigil/busybox:1", "sigil/python:1"]),
    // Per-job limits: the maxima a job may ask for and its defaults, within what a sandbox can
    // run at all (shared/jobs/bounds.ts, which the worker's sandbox validates with too).
    default_timeout_ms: z
      .number()
      .int()
      .min(LIMIT_BOUNDS.timeoutMs.min)
      .max(LIMIT_BOUNDS.timeoutMs.max)
      .default(DEFAULT_TIMEOUT_MS),
    max_timeout_ms: z
      .number()
      .int()
      .min(LIMIT_BOUNDS.timeoutMs.min)
      .max(LIMIT_BOUNDS.timeoutMs.max)
      .default(300_000),
    memory_mb: z
      .number()
      .int()
      .min(LIMIT_BOUNDS.memoryMb.min)
      .max(LIMIT_BOUNDS.memoryMb.max)
      .default(DEFAULT_LIMITS.memoryMb),
    cpus: z
      .number()
      .min(LIMIT_BOUNDS.cpus.min)
      .max(LIMIT_BOUNDS.cpus.max)
      .default(DEFAULT_LIMITS.cpus),
    pids: z
      .number()
      .int()
      .min(LIMIT_BOUNDS.pids.min)
      .max(LIMIT_BOUNDS.pids.max)
      .default(DEFAULT_LIMITS.pids),
    output_bytes: z
      .number()
      .int()
      .min(LIMIT_BOUNDS.outputBytes.min)
      .max(LIMIT_BOUNDS.outputBytes.max)
      .default(DEFAULT_LIMITS.outputBytes),
    cap_add: z.array(z.string().regex(/^[A-Z_]+$/)).default([]),
    // The Docker runtime for Tier 2. Its gVisor platform is fixed where infra/docker.sh registers
    // it (SIGIL_RUNSC_PLATFORM); `runsc-ptrace` is always registered pinned to ptrace.
    gvisor_runtime: z.enum(["runsc", "runsc-ptrace"]).default("runsc"),
    warm_pool_size: z.number().int().min(0).max(32).default(2),
    // The most a warm pool may grow to under load (docs/sandbox.md); below warm_pool_size it is
    // warm_pool_size. Bounds the idle containers (and their memory) a burst can leave behind.
    warm_pool_max: z.number().int().min(0).max(32).default(8),
    concurrency: z.number().int().min(1).max(64).default(2),
    queue: z.string().min(1).default("sigil-jobs"),
    gateway_url: z.url().optional(),
    api_url: z.url().default(DEFAULT_API_URL),
  })
  .refine((s) => s.default_timeout_ms <= s.max_timeout_ms, {
    message: "default_timeout_ms must not exceed max_timeout_ms",
    path: ["default_timeout_ms"],
  });

// Sandbox egress (docs/sandbox.md, "Egress"): off by default, so jobs asking for network are
// refused until an operator turns it on for API and workers alike. Exceptions to the deny ranges
// name a CIDR and the ports they open (`10.0.0.0/8:6333`); `deny_cidrs` are never opened.
const exceptionText = z.string().superRefine((v, ctx) => {
  if (!parseException(v))
    ctx.addIssue({ code: "custom", message: `"${v.slice(0, 64)}": not cidr[:port[,port...]]` });
});
export const networkSchema = z.strictObject({
  egress: z.boolean().default(false),
  allow_cidrs: z.array(exceptionText).max(256).default([]),
  deny_cidrs: z.array(cidrText).max(256).default([]),
  // The upstream resolvers the worker's filtering resolver asks ("ip" or "ip:port"); required
  // when egress is on (no silent fallback to the host's resolver).
  resolvers: z
    .array(
      z.string().refine((v) => parseResolverAddress(v) !== null, "an IP address, optionally :port"),
    )
    .max(8)
    .default([]),
  // Per job: new connections per second (a burst of the same size), bytes both ways, and
  // connections in all.
  connections_per_second: z.number().gt(0).max(10_000).default(20),
  max_bytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * MiB)
    .default(64 * MiB),
  max_connections: z.number().int().min(1).max(100_000).default(1000),
  // The runsc runtime registered with its network stack (infra/docker.sh) for Tier 2 jobs with
  // network; the default runtime keeps --network=none.
  gvisor_network_runtime: z
    .string()
    .regex(/^[a-z0-9-]+$/)
    .default("runsc-net"),
  // The tunnels' data plane (docs/sandbox.md, "Egress"): splice(2) by the worker's native addon,
  // or Node streams. `auto` takes splice where the addon is built; `splice` makes a worker
  // without it refuse to start.
  relay: z.enum(["auto", "splice", "js"]).default("auto"),
  // Where job networks take their /28 subnets (docs/sandbox.md, "Egress"). Empty: Docker's
  // default address pools, which hold about 30 networks at once. Must not overlap a destination
  // range jobs may reach (the host would route it to the bridge instead).
  job_subnet_pool: z
    .string()
    .default("")
    .superRefine((v, ctx) => {
      const problem = v === "" ? null : subnetPoolProblem(v);
      if (problem) ctx.addIssue({ code: "custom", message: `"${v.slice(0, 64)}": ${problem}` });
    }),
});

// Quotas (docs/governance.md): token buckets per key id and per subject, and job caps per
// submitter. The defaults are far above what one developer's tools send and far below a flood; a
// role's table (`[limits.roles.worker]`) or a key record's `limits` overrides them for those
// callers.
const perSecond = z.number().gt(0).max(1_000_000);
const jobCount = z.number().int().min(1).max(1_000_000);
const limitOverrides = z.strictObject({
  requests_per_second: perSecond.optional(),
  evaluations_per_second: perSecond.optional(),
  audit_appends_per_second: perSecond.optional(),
  queued_jobs: jobCount.optional(),
  running_jobs: jobCount.max(4096).optional(),
});

export const limitsSchema = z.strictObject({
  // Signed requests of any kind.
  requests_per_second: perSecond.default(200),
  // Policy decisions; a batch counts each request in it (each is an audited decision).
  evaluations_per_second: perSecond.default(1000),
  // POST /v1/audit/events.
  audit_appends_per_second: perSecond.default(200),
  // Jobs a submitter may have unfinished (queued or running); more is 429 at submission.
  queued_jobs: jobCount.default(100),
  // Jobs of one submitter running at once; a worker defers the submitter's others.
  running_jobs: jobCount.max(4096).default(4),
  // A bucket holds this many seconds of its rate: the burst an idle caller may send at once.
  burst_seconds: z.number().gt(0).max(3600).default(2),
  // auth.failed and limit.exceeded are aggregated per source and reason over this window.
  audit_window_ms: z.number().int().min(100).max(3_600_000).default(10_000),
  // The edge's gateway key carries every edge caller's job traffic to Node.
  roles: z
    .strictObject({
      admin: limitOverrides.optional(),
      agent: limitOverrides.optional(),
      worker: limitOverrides.optional(),
      auditor: limitOverrides.optional(),
      gateway: limitOverrides.optional(),
    })
    .default({ gateway: { requests_per_second: 2000 } }),
});

// docs/governance.md "Approvals": how long an approval may stay unanswered (then it is expired,
// which is a deny), and, once approved, how long it may wait to be redeemed. Records stay
// readable for retention_s after that.
export const approvalsSchema = z.strictObject({
  timeout_s: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400)
    .default(900),
  retention_s: z
    .number()
    .int()
    .min(60)
    .max(366 * 86_400)
    .default(7 * 86_400),
  // Receivers of signed approval events, chosen by the operator. Default none.
  webhooks: z
    .array(z.url({ protocol: /^https?$/ }).max(2048))
    .max(16)
    .default([]),
  webhook_attempts: z.number().int().min(1).max(20).default(6),
  webhook_queue: z.number().int().min(1).max(100_000).default(1000),
});

// Incident response (docs/incidents.md): detector thresholds, windows and response channels. The
// detectors themselves are data (shared/incidents/rules.ts); these numbers tune them.
const webhookList = z
  .array(z.url({ protocol: /^https?$/ }).max(2048))
  .max(16)
  .default([]);
const seconds = z.number().int().min(1).max(86_400);
export const incidentsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  // Events of one subject within this window join its open incident of the same detector.
  correlation_window_s: seconds.default(900),
  failed_auth_threshold: z.number().int().min(2).max(100_000).default(20),
  failed_auth_window_s: seconds.default(60),
  policy_violation_threshold: z.number().int().min(2).max(100_000).default(20),
  // From this many violations in the window the incident is high (a burst, not a misconfiguration).
  policy_violation_high_threshold: z.number().int().min(2).max(1_000_000).default(100),
  policy_violation_window_s: seconds.default(60),
  sandbox_signal_threshold: z.number().int().min(1).max(10_000).default(3),
  sandbox_signal_high_threshold: z.number().int().min(1).max(10_000).default(6),
  sandbox_signal_window_s: seconds.default(600),
  // Resource anomaly: a subject's events in one bucket over its own moving average.
  anomaly_factor: z.number().min(2).max(1000).default(10),
  anomaly_min_events: z.number().int().min(1).max(1_000_000).default(300),
  anomaly_bucket_s: seconds.default(60),
  // Audit events read per detection step, and how often a process looks for new ones.
  batch: z.number().int().min(1).max(5000).default(500),
  poll_ms: z.number().int().min(10).max(60_000).default(250),
  alert_webhooks: webhookList,
  emergency_webhooks: webhookList,
  // What emergency mode refuses: job submissions, or every call but admin and auditor ones.
  emergency_scope: z.enum(["jobs", "all"]).default("jobs"),
});

/** A listen address "host:port" (IPv6 in brackets), or "" for none. */
const listenAddress = z
  .string()
  .max(300)
  .regex(/^$|^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be "host:port" or ""');

// Prometheus metrics (docs/operating.md "Metrics and traces"). The API's GET /metrics on the public
// port answers admin- or auditor-signed requests only; `listen` and `worker_listen` are separate,
// unsigned addresses (keep them on loopback or a private network), off by default.
export const metricsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  listen: listenAddress.default(""),
  worker_listen: listenAddress.default(""),
});

// Compliance reports (docs/compliance.md): custom frameworks beside the shipped ones, from files
// (Node) or inline JSON (the edge has no files), and the frameworks whose retention minimum the
// deployment is held to (start-up and every prune refuse less).
export const complianceSchema = z.strictObject({
  framework_files: z.array(z.string().min(1).max(4096)).max(64).default([]),
  frameworks_json: z.string().max(1_000_000).default(""),
  enforce: z
    .array(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "must be a framework id"))
    .max(64)
    .default([]),
});

export const configSchema = z
  .strictObject({
    server: serverSchema.default(serverSchema.parse({})),
    auth: authSchema.default(authSchema.parse({})),
    redis: redisSchema.default(redisSchema.parse({})),
    security: securitySchema.default(securitySchema.parse({})),
    tofu: tofuSchema.default(tofuSchema.parse({})),
    policy: policySchema.default(policySchema.parse({})),
    risk: riskSchema.default(riskSchema.parse({})),
    audit: auditSchema.default(auditSchema.parse({})),
    sandbox: sandboxSchema.default(sandboxSchema.parse({})),
    limits: limitsSchema.default(limitsSchema.parse({})),
    approvals: approvalsSchema.default(approvalsSchema.parse({})),
    metrics: metricsSchema.default(metricsSchema.parse({})),
    incidents: incidentsSchema.default(incidentsSchema.parse({})),
    network: networkSchema.default(networkSchema.parse({})),
    compliance: complianceSchema.default(complianceSchema.parse({})),
  })
  .refine(
    (c) =>
      !(c.security.hsm_enabled || c.security.key_store_type === "hsm") ||
      c.security.hsm_config_path !== undefined,
    {
      message: 'hsm_enabled = true and key_store_type = "hsm" need hsm_config_path',
      path: ["security", "hsm_config_path"],
    },
  )
  .refine((c) => !c.network.egress || c.network.resolvers.length > 0, {
    message: "[network] egress = true needs resolvers",
    path: ["network", "resolvers"],
  });

export type SigilConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
