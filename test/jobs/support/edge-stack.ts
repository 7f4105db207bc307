// The edge path of jobs, set up as in production: a Node target (Redis, BullMQ, the job gateway),
// an edge instance (workerd) whose service key Node registers as its `gateway` key, agent and
// worker keys in the edge's own registry, and a real worker consumer that trusts the edge's service
// key and reports through the edge. One definition for every edge job test.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { expect } from "vitest";
import { queuePrefix } from "../../../platform/node/queue";
import { Sigil } from "../../../sdk";
import { loadConfig, type SigilConfig } from "../../../shared/config";
import { publicJwk, publicKeyFromJwk, verifyEd25519 } from "../../../shared/crypto";
import { toBase64Url } from "../../../shared/encoding";
import { type Consumer, startConsumer } from "../../../worker/jobs/consumer";
import type { SandboxDriver } from "../../../worker/jobs/driver";
import { Outbox } from "../../../worker/jobs/outbox";
import { apiReporter } from "../../../worker/jobs/reporter";
import { createSandboxDriver } from "../../../worker/jobs/sandbox-driver";
import { type EdgeInstance, startEdge } from "../../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../../support/redis";
import {
  newKey,
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
} from "../../support/targets";
import { quiet } from "./harness";

export interface EdgeStack {
  node: Target;
  edge: EdgeInstance;
  /** A client of the edge signed with `key`. */
  edgeClient(key: TestKey): Sigil;
  /** The edge's admin. */
  admin: Sigil;
  /** Trust 1 in the edge's registry: its low-risk jobs run on runc. */
  agent: TestKey;
  worker: TestKey;
  workerId: string;
  edgeServiceKid: string;
  /** The worker's own view of the sandbox settings (no warm pool). */
  workerConfig: SigilConfig;
  stop(): Promise<void>;
}

/** `policy` is the edge's sandbox policy document (default deny otherwise). */
export async function startEdgeStack(name: string, policy: string): Promise<EdgeStack> {
  const workerId = `${name}-worker`;
  // The Node side's Redis namespace and queue, so the consumer can listen on them.
  const prefix = testPrefix(name).replace(/:$/, "").replace(/:/g, "-");
  const queue = `jobs-${prefix}`;
  // Cold runc starts are enough for a few small jobs and spare this 2-core machine a gVisor pool.
  const workerConfig = loadConfig({ env: { SIGIL_SANDBOX_WARM_POOL_SIZE: "0" } });
  const redis: Redis = connectRedis();
  const dir = await mkdtemp(join(tmpdir(), `sigil-${name}-`));
  const node = await startTarget("node", {
    SIGIL_REDIS_PREFIX: prefix,
    SIGIL_SANDBOX_QUEUE: queue,
  });
  const edgeAdmin = await newKey();
  const edge = await startEdge({
    SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(edgeAdmin.publicKey, { kid: edgeAdmin.kid })]),
    SIGIL_GATEWAY_URL: node.url,
  });
  const edgeClient = (key: TestKey) =>
    new Sigil({ baseUrl: edge.url, keyId: key.kid, signer: key.signer, retries: 0 });

  // The edge's service key becomes a `gateway` key on Node: the only key that may call
  // /v1/gateway/jobs, and the only one whose envelopes Node queues for the edge.
  const jwks = (await (await fetch(`${edge.url}/.well-known/sigil/keys`)).json()) as {
    keys: { kid: string; role: string; x: string; status: string }[];
  };
  const service = jwks.keys.filter((k) => k.role === "service" && k.status === "active");
  expect(service).toHaveLength(1);
  const edgeServiceKid = service[0]!.kid;
  const edgeServiceKey = publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: service[0]!.x });
  const registered = await node.client(node.admin).keys.create({
    role: "gateway",
    subject: "edge",
    publicKey: toBase64Url(edgeServiceKey),
  });
  expect(registered.kid).toBe(edgeServiceKid);

  // Agent and worker keys live in the EDGE's own key registry.
  const admin = edgeClient(edgeAdmin);
  const agent = await registeredKey(admin, "agent", "edge-agent", { trust: 1 });
  const worker = await registeredKey(admin, "worker", workerId);
  await admin.policies.put("sandbox", policy);

  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  const driver: SandboxDriver = createSandboxDriver(workerId, workerConfig).driver;
  const consumer: Consumer = startConsumer({
    connection: redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: queue,
    queuePrefix: queuePrefix(prefix),
    concurrency: 2,
    workerId,
    signer: worker.signer,
    driver,
    // Reports go to the edge, which forwards them to the Node gateway.
    reporter: apiReporter(edgeClient(worker)),
    outbox,
    envelope: {
      // The envelopes were signed on the edge: its service key is the one to trust.
      serviceKey: async (kid) => (kid === edgeServiceKid ? edgeServiceKey : undefined),
      verify: verifyEd25519,
      sandbox: workerConfig.sandbox,
      defaultTier: workerConfig.security.default_sandbox_tier,
      thresholds: {
        medium: workerConfig.risk.medium_threshold,
        high: workerConfig.risk.high_threshold,
      },
    },
    log: quiet,
  });
  await consumer.worker.waitUntilReady();

  return {
    node,
    edge,
    edgeClient,
    admin,
    agent,
    worker,
    workerId,
    edgeServiceKid,
    workerConfig,
    async stop() {
      await consumer.close(5000);
      await driver.shutdown();
      await edge.stop();
      await node.stop();
      await dropPrefix(redis, `${prefix}:`);
      redis.disconnect();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
