import type { Redis } from "ioredis";
import { type AuthKey, authenticate } from "../../../functions/middleware/auth";
import { onError } from "../../../functions/middleware/errors";
import type { Role } from "../../../functions/middleware/roles";
import { startReconciler } from "../../../functions/node/jobs/reconcile";
import { RedisJobsBackend } from "../../../functions/node/jobs/redis-backend";
import { router } from "../../../functions/router";
import {
  type JobAuditEvent,
  type JobPolicyDecision,
  type JobPolicyRequest,
  jobsRoutes,
} from "../../../functions/routes/jobs";
import { type CallOptions, type JobRecord, Sigil } from "../../../sdk";
import { loadConfig, type SigilConfig } from "../../../shared/config";
import {
  createSigner,
  generateEd25519KeyPair,
  publicJwk,
  type Signer,
  verifyEd25519,
} from "../../../shared/crypto";
import { MemoryReplayCache } from "../../../shared/httpsig";
import type { ResultBody } from "../../../shared/jobs/result";
import { connectRedis, dropPrefix, testPrefix } from "../../support/redis";
import { serveOnLoopback } from "../../support/serve";

/**
 * Risk inputs that score low: the job runs on the Docker (runc) tier when its key has trust 1
 * (codeTrustLevel is the key's admin-set trust, never the declaration: GOVERNANCE.md).
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
  backend: RedisJobsBackend;
  baseUrl: string;
  service: Signer;
  audits: JobAuditEvent[];
  policy: { next?: JobPolicyDecision; seen: JobPolicyRequest[] };
  keys: Map<string, AuthKey>;
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
): Promise<Harness> {
  const prefix = testPrefix(name).replace(/:$/, "").replace(/:/g, "-");
  const config = loadConfig({
    env: { SIGIL_REDIS_PREFIX: prefix, SIGIL_SANDBOX_QUEUE: `jobs-${name}`, ...overrides },
  });
  const redis = connectRedis();
  const backend = new RedisJobsBackend({ redis, prefix, queueName: config.sandbox.queue });
  const service = await newSigner();
  const audits: JobAuditEvent[] = [];
  const policy: Harness["policy"] = { seen: [] };
  const keys = new Map<string, AuthKey>();

  const app = router();
  app.use(
    "/v1/*",
    authenticate({
      resolveKey: async (kid) => keys.get(kid) ?? { status: "unknown" },
      verify: verifyEd25519,
      replay: new MemoryReplayCache(),
      maxSkewSeconds: 300,
      onRejected: async (f) => {
        audits.push({ eventType: "auth.failed", details: { ...f } });
      },
    }),
  );
  app.route(
    "/",
    jobsRoutes({
      config,
      backend,
      serviceSigner: service,
      evaluate: async (req) => {
        policy.seen.push(req);
        return (
          policy.next ?? {
            decision: "allow",
            enforced: true,
            decisionId: `d-${policy.seen.length}`,
          }
        );
      },
      audit: async (e) => {
        audits.push(e);
      },
      workerKey: async (kid) => {
        const k = keys.get(kid);
        return k && k.role === "worker" ? k.publicKey : undefined;
      },
    }),
  );
  app.get("/.well-known/sigil/keys", (c) =>
    c.json({ keys: [publicJwk(service.publicKey, { status: "active" })] }),
  );
  app.onError(onError({ debug() {}, info() {}, warn() {}, error() {} } as never));

  const reconciler = startReconciler({
    redis,
    prefix,
    queueName: config.sandbox.queue,
    backend,
    audit: async (e) => {
      audits.push(e);
    },
  });
  await reconciler.ready();

  const server = await serveOnLoopback(app.fetch);
  const baseUrl = server.url;

  return {
    config,
    redis,
    prefix,
    backend,
    baseUrl,
    service,
    audits,
    policy,
    keys,
    async addKey(role, subject, signer, attrs = {}) {
      const s = signer ?? (await newSigner());
      keys.set(s.kid, {
        status: "active",
        kid: s.kid,
        publicKey: s.publicKey,
        role,
        subject,
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
      await dropPrefix(redis, `${prefix}:`);
      redis.disconnect();
    },
  };
}
