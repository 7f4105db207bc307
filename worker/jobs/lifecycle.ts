// A worker node's lifecycle (docs/sandbox.md): key, preflight, orphan cleanup, consume, graceful
// stop. The sandbox driver is passed in, so the same lifecycle runs with worker/sandbox in
// production.
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import Docker from "dockerode";
import type { Redis } from "ioredis";
import { serveMetrics } from "../../platform/node/metrics-server";
import { installNodeSha256 } from "../../platform/node/native-hash";
import { jobQueue } from "../../platform/node/queue";
import { connectRedis, describeRedis } from "../../platform/node/redis";
import { Sigil, SigilError } from "../../sdk";
import type { SigilConfig } from "../../shared/config";
import { verifyEd25519 } from "../../shared/crypto";
import { envelopeChecks } from "../../shared/jobs";
import { type Consumer, startConsumer, type WorkerLog } from "./consumer";
import type { SandboxDriver } from "./driver";
import { loadOrCreateWorkerKey, serviceKeyResolver } from "./keys";
import { prometheusWorkerMetrics } from "./metrics";
import { Outbox } from "./outbox";
import { type QuarantinePause, quarantinePause } from "./quarantine-pause";
import { apiReporter } from "./reporter";

/** The job id a quarantine probe reports a start for: none exists, so the answer is 404 or 403. */
const QUARANTINE_PROBE_JOB = "quarantine-probe";

export interface WorkerNodeOptions {
  config: SigilConfig;
  env: NodeJS.ProcessEnv;
  driver: (workerId: string) => SandboxDriver | Promise<SandboxDriver>;
  /** Extra checks (the driver's own preflight); each returns problems, [] when fine. */
  preflight?: (() => Promise<string[]>)[];
  log: WorkerLog;
  /** Add process metrics (CPU, memory, event loop) to the node's /metrics: once per process. */
  processMetrics?: boolean;
}

export interface WorkerNode {
  workerId: string;
  kid: string;
  consumer: Consumer;
  stop(graceMs?: number): Promise<void>;
}

export class PreflightError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot start:\n  - ${problems.join("\n  - ")}`);
    this.name = "PreflightError";
  }
}

/** Redis, dockerd, runtimes and images: what a node needs before it takes a job. */
export async function basePreflight(config: SigilConfig, redis: Redis): Promise<string[]> {
  const problems: string[] = [];
  try {
    await redis.ping();
  } catch (e) {
    problems.push(`redis (${describeRedis(config.redis)}) unreachable: ${(e as Error).message}`);
  }
  const docker = new Docker();
  try {
    const info = (await docker.info()) as { Runtimes?: Record<string, unknown>; NCPU?: number };
    if (!info.Runtimes?.runc) problems.push("runc is not registered with dockerd");
    // dockerd refuses a container with more CPUs than the host has: every job the API accepts
    // (up to sandbox.cpus) must run here.
    if (typeof info.NCPU === "number" && config.sandbox.cpus > info.NCPU)
      problems.push(
        `sandbox.cpus is ${config.sandbox.cpus} but this host has ${info.NCPU} CPUs; jobs the API accepts would not start here`,
      );
    if (!info.Runtimes?.runsc)
      problems.push("runsc (gVisor) is not registered with dockerd; run infra/docker.sh");
    const tags = new Set((await docker.listImages()).flatMap((i) => i.RepoTags ?? []));
    for (const image of config.sandbox.images)
      if (!tags.has(image)) problems.push(`image ${image} is missing; run infra/images.sh`);
  } catch (e) {
    problems.push(`dockerd unreachable: ${(e as Error).message}; run infra/docker.sh`);
  }
  return problems;
}

export async function startWorkerNode(o: WorkerNodeOptions): Promise<WorkerNode> {
  installNodeSha256();
  const { config, env, log } = o;
  const dir = resolve(config.server.data_dir, "worker");
  const key = await loadOrCreateWorkerKey(dir);
  if (key.created)
    log.info("created the worker key; register it with role worker (POST /v1/keys)", {
      kid: key.signer.kid,
      publicJwk: join(dir, "worker-key.pub.jwk"),
    });
  const workerId = env.SIGIL_WORKER_ID || `${hostname()}-${key.signer.kid.slice(0, 8)}`;

  const redis = connectRedis(config.redis, { maxRetriesPerRequest: null, lazyConnect: true });
  redis.on("error", (e) => log.warn("redis connection error", { err: e.message }));
  const problems: string[] = [];
  try {
    await redis.connect();
  } catch {
    // reported by the preflight ping below
  }
  // Loaded first so its own preflight can run with the node's checks; it starts nothing yet.
  const driver = await o.driver(workerId);
  problems.push(...(await basePreflight(config, redis)));
  for (const check of o.preflight ?? []) problems.push(...(await check()));
  const staticKeys = env.SIGIL_SERVICE_KEYS ? parseKeys(env.SIGIL_SERVICE_KEYS, problems) : [];
  if (problems.length > 0) {
    redis.disconnect();
    await driver.shutdown().catch(() => undefined);
    throw new PreflightError(problems);
  }

  const removed = await driver.cleanupOrphans(workerId);
  log.info("removed containers left by an earlier run", { workerId, removed });

  const client = new Sigil({
    baseUrl: config.sandbox.api_url,
    signer: key.signer,
    timeoutMs: 15_000,
  });
  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  const lockMs = Number(env.SIGIL_WORKER_LOCK_MS ?? "") || 8_000;
  const queue = jobQueue(config);
  // The node's metrics on their own address, when configured (docs/operating.md).
  const metrics = config.metrics.worker_listen
    ? prometheusWorkerMetrics({ processMetrics: o.processMetrics === true })
    : undefined;
  const metricsServer = metrics
    ? await serveMetrics(config.metrics.worker_listen, metrics, (e) =>
        log.error("metrics exposition failed", { err: String(e) }),
      )
    : undefined;
  if (metricsServer)
    log.info("worker metrics listening (unsigned)", {
      address: config.metrics.worker_listen,
      port: metricsServer.port,
    });
  let pause: QuarantinePause | undefined;
  const consumer = startConsumer({
    connection: redis,
    queueName: queue.name,
    queuePrefix: queue.prefix,
    concurrency: config.sandbox.concurrency,
    workerId,
    signer: key.signer,
    driver,
    // Set just below; a refusal before that is caught by the next one.
    reporter: apiReporter(client, () => pause?.quarantined()),
    outbox,
    envelope: envelopeChecks(
      config,
      serviceKeyResolver({
        staticKeys,
        ...(env.SIGIL_SERVICE_KEYS ? {} : { fetchJwks: () => client.wellKnownKeys() }),
      }),
      verifyEd25519,
    ),
    log,
    lockDurationMs: lockMs,
    redisPrefix: config.redis.prefix,
    runningJobs: config.limits.running_jobs,
    ...(metrics ? { metrics } : {}),
  });
  // Paused while quarantined (docs/incidents.md "Quarantine"); probed by a start report for no job.
  pause = quarantinePause({
    pause: () => consumer.worker.pause(true),
    resume: () => consumer.worker.resume(),
    probe: async () => {
      try {
        await client.jobs.reportResult(QUARANTINE_PROBE_JOB, {
          type: "started",
          attempt: 1,
          workerId,
          envelopeHash: "0".repeat(64),
          lockHash: "0".repeat(64),
        });
      } catch (e) {
        // Only "no such job" means the report got past the quarantine check; anything else (a
        // revoked key's 401 included) keeps the worker paused.
        if (e instanceof SigilError && e.status === 404) return false;
        if (e instanceof SigilError && e.code === "quarantined") return true;
        throw e;
      }
      return false;
    },
    probeMs: Number(env.SIGIL_WORKER_QUARANTINE_PROBE_MS ?? "") || 10_000,
    log,
  });
  await consumer.worker.waitUntilReady();
  log.info("worker ready, consuming jobs", {
    workerId,
    kid: key.signer.kid,
    queue: config.sandbox.queue,
    concurrency: config.sandbox.concurrency,
  });

  let stopping: Promise<void> | undefined;
  return {
    workerId,
    kid: key.signer.kid,
    consumer,
    stop(graceMs = 30_000) {
      stopping ??= (async () => {
        pause?.close();
        // Idle warm containers go first: they run no job, and a supervisor that stops waiting
        // (SIGKILL after its own grace period) must not find them still there.
        const drained = (driver.drain?.() ?? Promise.resolve()).catch((e) =>
          log.error("warm pool drain failed", { err: String(e) }),
        );
        // Running jobs get the grace period; the containers are removed even if the queue
        // connection hangs in closing.
        let t: NodeJS.Timeout | undefined;
        await Promise.race([
          consumer.close(graceMs),
          new Promise<void>((r) => {
            t = setTimeout(() => {
              log.warn("queue close did not finish; removing containers anyway", { graceMs });
              r();
            }, graceMs + 10_000);
          }),
        ]);
        clearTimeout(t);
        await drained;
        await driver
          .shutdown()
          .catch((e) => log.error("driver shutdown failed", { err: String(e) }));
        await redis.quit().catch(() => redis.disconnect());
        await metricsServer?.close();
      })();
      return stopping;
    },
  };
}

function parseKeys(raw: string, problems: string[]): unknown[] {
  try {
    const v = JSON.parse(raw) as unknown;
    if (Array.isArray(v)) return v;
    if (v && typeof v === "object" && Array.isArray((v as { keys?: unknown }).keys))
      return (v as { keys: unknown[] }).keys;
  } catch {
    // fall through
  }
  problems.push("SIGIL_SERVICE_KEYS must be a JSON array of Ed25519 JWKs (or a JWK Set)");
  return [];
}
