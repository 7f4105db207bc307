// The jobs test harness: the real Node composition (composeNode → createApp, as `npm run api`
// builds it) over a test Redis prefix and queue, so the jobs route is tested with its real wiring:
// authentication, quotas, the policy engine adapter, the audit service. Two hooks for the tests:
// `policy.next` decides `execute` on `sandbox` (default allow; other requests go to the engine),
// and `audits` lists every event the service appended, in order of durability.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { createApp } from "../../../functions/app";
import type { Role } from "../../../functions/middleware/roles";
import { composeNode } from "../../../functions/node/compose";
import { startReconciler } from "../../../functions/node/jobs/reconcile";
import { RedisJobsBackend } from "../../../functions/node/jobs/redis-backend";
import { type CallOptions, type JobRecord, Sigil } from "../../../sdk";
import { AuditAppendInputSchema } from "../../../shared/audit";
import { loadConfig, type SigilConfig } from "../../../shared/config";
import { createSigner, generateEd25519KeyPair, type Signer } from "../../../shared/crypto";
import type { JobAuditEvent, JobPolicyDecision, JobPolicyRequest } from "../../../shared/jobs";
import type { ResultBody } from "../../../shared/jobs/result";
import { silentLogger } from "../../../shared/log";
import { freePort } from "../../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../../support/redis";
import { serveOnLoopback } from "../../support/serve";

/**
 * Risk inputs that score low: the job runs on the Docker (runc) tier when its key has trust 1
 * (codeTrustLevel is the key's admin-set trust, never the declaration: docs/governance.md).
 */
export const lowRisk = {
  dataSensitivity: 0,
  codeTrustLevel: 1,
  networkAccess: 0,
  filesystemAccess: 0,
  externalApis: 0,
};

/** A job's result as the jobs API returns it: the worker's signed body beside the outputs. */
export type ApiJobResult = NonNullable<JobRecord["result"]> & { signed: ResultBody };

/** Submits a busybox command that scores low risk (Docker tier). */
export function submitLowRisk(client: Sigil, command: string[]) {
  return client.jobs.submit({ image: "sigil/busybox:1", command, risk: lowRisk });
}

/** Submits a low-risk busybox command and waits for it to finish. */
export async function runLowRisk(
  client: Sigil,
  command: string[],
  waitMs = 30_000,
  call?: CallOptions,
) {
  const accepted = await submitLowRisk(client, command);
  const job = await client.jobs.wait(accepted.jobId, waitMs, call);
  return { accepted, job, result: job.result as ApiJobResult };
}

/** A logger that drops everything. */
export const quiet = { info() {}, warn() {}, error() {} };

export interface Harness {
  config: SigilConfig;
  redis: Redis;
  prefix: string;
  /** The same Redis records and queue the app's backend uses. */
  backend: RedisJobsBackend;
  baseUrl: string;
  /** The service key the app signs envelopes with. */
  service: Signer;
  audits: JobAuditEvent[];
  policy: { next?: JobPolicyDecision; seen: JobPolicyRequest[] };
  /** A key of this role; `attrs` are its admin-set groups and trust (default none and 0). */
  addKey(
    role: Role,
    subject: string,
    signer?: Signer,
    attrs?: { groups?: string[]; trust?: number },
  ): Promise<Signer>;
  client(signer: Signer): Sigil;
  close(): Promise<void>;
}

export async function newSigner(): Promise<Signer> {
  return createSigner((await generateEd25519KeyPair()).secretKey);
}

export async function startHarness(
  name: string,
  overrides: Record<string, string> = {},
  /** sweepHeld false: no sweep of held jobs in this API (a test plays the dead process). */
  compose: { sweepHeld?: boolean } = {},
): Promise<Harness> {
  const prefix = testPrefix(name).replace(/:$/, "").replace(/:/g, "-");
  const dataDir = mkdtempSync(join(tmpdir(), "sigil-jobs-"));
  // Configured as well as listened on: requests are accepted only for the service's host:port.
  const port = await freePort();
  const config = loadConfig({
    env: {
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_SANDBOX_QUEUE: `jobs-${name}`,
      SIGIL_DATA_DIR: dataDir,
      SIGIL_SERVER_PORT: String(port),
      ...overrides,
    },
  });
  const redis = connectRedis();
  const deps = await composeNode({
    config,
    redis,
    log: silentLogger,
    health: [],
    scrypt: { N: 2 ** 14, r: 8, p: 1 },
    // Started below, so the harness can wait until it is ready.
    reconcile: false,
    ...compose,
  });

  const audits: JobAuditEvent[] = [];
  const append = deps.audit.append.bind(deps.audit);
  deps.audit.append = async (input, options) => {
    const r = await append(input, options);
    const e = AuditAppendInputSchema.parse(input);
    audits.push({ eventType: e.eventType, agentId: e.agentId, details: e.details });
    return r;
  };
  const policy: Harness["policy"] = { seen: [] };
  const evaluate = deps.policies.evaluate.bind(deps.policies);
  deps.policies.evaluate = (req, usage) => {
    if (req.action !== "execute" || req.resource !== "sandbox") return evaluate(req, usage);
    policy.seen.push({ action: "execute", resource: "sandbox", context: req.context });
    const d = policy.next ?? { decision: "allow", decisionId: `d-${policy.seen.length}` };
    return { matched: [], policySetVersion: "harness", ...d, enforced: d.enforced ?? true };
  };

  const backend = new RedisJobsBackend({ redis, prefix, queueName: config.sandbox.queue });
  const reconciler = startReconciler({
    redis,
    prefix,
    queueName: config.sandbox.queue,
    backend,
    audit: async (e) => {
      await deps.audit.append({
        eventType: e.eventType,
        agentId: e.agentId ?? "system",
        details: e.details,
      });
    },
  });
  await reconciler.ready();

  const server = await serveOnLoopback(createApp(deps).fetch, port);
  const baseUrl = server.url;

  return {
    config,
    redis,
    prefix,
    backend,
    baseUrl,
    service: deps.serviceSigner,
    audits,
    policy,
    async addKey(role, subject, signer, attrs = {}) {
      const s = signer ?? (await newSigner());
      await deps.keys.register({
        role,
        subject,
        publicKey: s.publicKey,
        createdAt: Date.now(),
        groups: attrs.groups ?? [],
        trust: attrs.trust ?? 0,
      });
      return s;
    },
    client: (signer) => new Sigil({ baseUrl, signer, retries: 0 }),
    async close() {
      await server.close();
      await reconciler.close();
      await backend.queue.obliterate({ force: true }).catch(() => undefined);
      await backend.close();
      await deps.close();
      await dropPrefix(redis, `${prefix}:`);
      redis.disconnect();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
