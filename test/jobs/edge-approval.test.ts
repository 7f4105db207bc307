// A job that waits for approval THROUGH THE EDGE (docs/governance.md "Approvals"): the edge's
// policy requires a supervisor's approval for sandbox jobs; the edge holds the signed envelope on
// Node through the job gateway (`hold`), its Durable Object holds the approval, and the edge's
// decision route releases (`release`) or rejects (`reject`) the job through the gateway. Setup as
// in edge-e2e.test.ts: a real worker consumer that trusts the edge's service key.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queuePrefix } from "../../platform/node/queue";
import { Sigil, type SigilError } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { publicJwk, publicKeyFromJwk, verifyEd25519 } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { type Consumer, startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver } from "../../worker/jobs/driver";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { type EdgeInstance, startEdge } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { newKey, registeredKey, startTarget, type Target, type TestKey } from "../support/targets";
import { type ApiJobResult, quiet, submitLowRisk } from "./support/harness";
import { expectSignedBy } from "./support/result";

const WORKER_ID = "edge-apj-worker";

// The Node side's Redis namespace and queue, so the consumer can listen on them.
const prefix = testPrefix("edge-apj").replace(/:$/, "").replace(/:/g, "-");
const queue = `jobs-${prefix}`;
// The worker's own view of the sandbox settings: defaults, with no warm pool (cold runc starts
// are enough for four small jobs and spare this 2-core machine the gVisor pool).
const workerConfig = loadConfig({ env: { SIGIL_SANDBOX_WARM_POOL_SIZE: "0" } });

let node: Target;
let edge: EdgeInstance;
let redis: Redis;
let dir: string;
let driver: SandboxDriver | undefined;
let consumer: Consumer | undefined;
let agent: TestKey;
let worker: TestKey;
let agentClient: Sigil;
let edgeServiceKid: string;
let boss: Sigil;
let sameSubject: Sigil;

const edgeClient = (key: TestKey) =>
  new Sigil({ baseUrl: edge.url, keyId: key.kid, signer: key.signer, retries: 0 });

beforeAll(async () => {
  redis = connectRedis();
  dir = await mkdtemp(join(tmpdir(), "sigil-edge-apj-"));
  node = await startTarget("node", { SIGIL_REDIS_PREFIX: prefix, SIGIL_SANDBOX_QUEUE: queue });
  const edgeAdmin = await newKey();
  edge = await startEdge({
    SIGIL_ADMIN_KEYS: JSON.stringify([publicJwk(edgeAdmin.publicKey, { kid: edgeAdmin.kid })]),
    SIGIL_GATEWAY_URL: node.url,
  });

  // The edge's service key becomes a `gateway` key on Node: the only key that may call
  // /v1/gateway/jobs, and the only one whose envelopes Node queues for the edge.
  const jwks = (await (await fetch(`${edge.url}/.well-known/sigil/keys`)).json()) as {
    keys: { kid: string; role: string; x: string; status: string }[];
  };
  const service = jwks.keys.filter((k) => k.role === "service" && k.status === "active");
  expect(service).toHaveLength(1);
  const edgeService = service[0]!;
  edgeServiceKid = edgeService.kid;
  const edgeServiceKey = publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: edgeService.x });
  const registered = await node.client(node.admin).keys.create({
    role: "gateway",
    subject: "edge",
    publicKey: toBase64Url(edgeServiceKey),
  });
  expect(registered.kid).toBe(edgeServiceKid);

  // Agent and worker keys live in the EDGE's own key registry.
  const admin = edgeClient(edgeAdmin);
  // Trusted by the edge's admin: its low-risk jobs run on runc (codeTrustLevel = the key's trust).
  agent = await registeredKey(admin, "agent", "edge-agent", { trust: 1 });
  worker = await registeredKey(admin, "worker", WORKER_ID);
  agentClient = edgeClient(agent);
  // Default deny: the edge's own policy store must allow sandbox jobs.
  await admin.policies.put(
    "sandbox",
    "policy jobs {\n  allow: execute(sandbox)\n  require: supervisor_approval for execute(sandbox)\n}",
  );
  boss = edgeClient(await registeredKey(admin, "agent", "boss", { groups: ["supervisor"] }));
  sameSubject = edgeClient(
    await registeredKey(admin, "agent", "edge-agent", { groups: ["supervisor"] }),
  );

  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  const sandbox = createSandboxDriver(WORKER_ID, workerConfig);
  driver = sandbox.driver;
  consumer = startConsumer({
    connection: redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: queue,
    queuePrefix: queuePrefix(prefix),
    concurrency: 2,
    workerId: WORKER_ID,
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
});

afterAll(async () => {
  await consumer?.close(5000);
  await driver?.shutdown();
  await edge?.stop();
  await node?.stop();
  if (redis) {
    await dropPrefix(redis, `${prefix}:`);
    redis.disconnect();
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a job that requires approval, through the edge", () => {
  it("202 awaiting_approval → a supervisor approves → runs once → signed result", async () => {
    const acc = await submitLowRisk(agentClient, ["echo", "edge-approved"]);
    expect(acc).toMatchObject({ status: "awaiting_approval", approver: "supervisor" });
    expect((await agentClient.jobs.get(acc.jobId)).status).toBe("awaiting_approval");
    // Self-approval by another key of the requester's subject: 403.
    const self = await sameSubject.approvals
      .decide(acc.approvalId!, { decision: "approve" })
      .then(() => undefined)
      .catch((e: SigilError) => e);
    expect(self?.status).toBe(403);
    await boss.approvals.decide(acc.approvalId!, { decision: "approve", reason: "ok" });
    const job = await agentClient.jobs.wait(acc.jobId, 60_000);
    expect(job.status).toBe("succeeded");
    expect(job.result?.stdout).toBe("edge-approved\n");
    expect(job.attempts).toBe(1);
    const r = job.result as ApiJobResult;
    await expectSignedBy(r, acc.jobId, worker.publicKey);
    expect((await boss.approvals.get(acc.approvalId!)).status).toBe("redeemed");
  }, 90_000);

  it("denied → rejected", async () => {
    const acc = await submitLowRisk(agentClient, ["true"]);
    await boss.approvals.decide(acc.approvalId!, { decision: "deny", reason: "no" });
    const job = await agentClient.jobs.wait(acc.jobId, 10_000);
    expect(job.status).toBe("rejected");
    expect(job.reason).toMatch(/denied by boss/);
  }, 30_000);
});
