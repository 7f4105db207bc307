// A sandbox job end to end THROUGH THE EDGE: agent → edge (workerd) /v1/jobs → the Node job gateway
// (signed with the edge's service key, role `gateway` on Node) → BullMQ → a real worker consumer
// (product sandbox driver, Docker runc) that trusts the edge's service key → started and result
// reports back to the EDGE → forwarded to Node → wait through the edge.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queuePrefix } from "../../platform/node/queue";
import { Sigil } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { publicJwk, publicKeyFromJwk, verifyEd25519 } from "../../shared/crypto";
import { toBase64Url } from "../../shared/encoding";
import { signRequest } from "../../shared/httpsig";
import { outputHash } from "../../shared/jobs";
import { type Consumer, startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver } from "../../worker/jobs/driver";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { type EdgeInstance, startEdge } from "../support/edge";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { newKey, registeredKey, startTarget, type Target, type TestKey } from "../support/targets";
import { quiet, runLowRisk, submitLowRisk } from "./support/harness";
import { expectSignedBy } from "./support/result";

const MiB = 1024 * 1024;
const WORKER_ID = "edge-e2e-worker";

// The Node side's Redis namespace and queue, so the consumer can listen on them.
const prefix = testPrefix("edge-e2e").replace(/:$/, "").replace(/:/g, "-");
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
let edgeAdminClient: Sigil;

const edgeClient = (key: TestKey) =>
  new Sigil({ baseUrl: edge.url, keyId: key.kid, signer: key.signer, retries: 0 });

beforeAll(async () => {
  redis = connectRedis();
  dir = await mkdtemp(join(tmpdir(), "sigil-edge-jobs-"));
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
  edgeAdminClient = admin;
  // Trusted by the edge's admin: its low-risk jobs run on runc (codeTrustLevel = the key's trust).
  agent = await registeredKey(admin, "agent", "edge-agent", { trust: 1 });
  worker = await registeredKey(admin, "worker", WORKER_ID);
  agentClient = edgeClient(agent);
  // Default deny: the edge's own policy store must allow sandbox jobs.
  await admin.policies.put("sandbox", "policy jobs {\n  allow: execute(sandbox)\n}");

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

describe("a sandbox job through the edge", () => {
  let jobId: string;

  it("runs on runc and returns a result signed by the worker", async () => {
    const {
      accepted: acc,
      job,
      result: r,
    } = await runLowRisk(agentClient, ["sh", "-c", "echo hello from the edge; echo note >&2"]);
    expect(acc).toMatchObject({ tier: "docker", status: "queued", riskScore: 0 });
    jobId = acc.jobId;
    expect(job.status).toBe("succeeded");
    expect(r).toMatchObject({
      status: "succeeded",
      exitCode: 0,
      stdout: "hello from the edge\n",
      stderr: "note\n",
      truncated: false,
      workerId: WORKER_ID,
    });
    expect(r.signed.runtime).toBe("runc");
    expect(r.signed.tier).toBe("docker");
    expect(r.kid).toBe(worker.kid);
    await expectSignedBy(r, jobId, worker.publicKey);
    // The record lives on Node (an admin there sees it), reached by the edge over the gateway.
    const onNode = await node.client(node.admin).jobs.get(jobId);
    expect(onNode).toMatchObject({ jobId, status: "succeeded", tier: "docker" });
    expect(onNode.result?.resultHash).toBe(r.resultHash);
    // The edge audited the job's life on its own chain.
    const { events } = await edgeAdminClient.audit.list({ from: 0, limit: 1000 });
    const mine = events.filter((e) => e.details.jobId === jobId);
    expect(mine.map((e) => e.eventType)).toEqual(["job.submitted", "job.started", "job.completed"]);
    expect(mine[0]!.details).toMatchObject({ serviceKid: edgeServiceKid, tier: "docker" });
  });

  it("a long wait (90 s) on a finished job answers 200 through the edge", async () => {
    expect(jobId).toBeDefined();
    const job = await agentClient.jobs.wait(jobId, 90_000);
    expect(job).toMatchObject({ jobId, status: "succeeded" });
    // The same as a plain signed request, so the status code itself is what is checked.
    const url = `${edge.url}/v1/jobs/${jobId}/wait?timeoutMs=90000`;
    const sig = await signRequest({ method: "GET", url, headers: {} }, agent.signer, {
      keyid: agent.kid,
    });
    const res = await fetch(url, { headers: { ...sig } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe("succeeded");
  });

  it("streams queued, started, output and finished as server-sent events through the edge", async () => {
    const acc = await submitLowRisk(agentClient, ["echo", "streamed"]);
    const seen: { event: string; data: unknown }[] = [];
    for await (const e of agentClient.jobs.events(acc.jobId, { timeoutMs: 30_000 }))
      seen.push({ event: e.event, data: e.data });
    expect(seen.map((e) => e.event)).toEqual(["queued", "started", "output", "finished"]);
    expect(seen[2]!.data).toEqual({ stream: "stdout", data: "streamed\n" });
    expect(seen[3]!.data).toMatchObject({ status: "succeeded", exitCode: 0 });
  });

  it("a result report larger than the general body limit is forwarded to Node", async () => {
    // Each stream is capped at output_bytes (1 MiB by default): the job writes more than that to
    // both, so the worker's report (and the edge's forward of it) carries about 2 MiB.
    const cap = workerConfig.sandbox.output_bytes;
    expect(cap).toBe(MiB);
    const n = cap + 64 * 1024;
    const {
      accepted: acc,
      job,
      result: r,
    } = await runLowRisk(
      agentClient,
      ["sh", "-c", `head -c ${n} /dev/zero | tr '\\0' o; head -c ${n} /dev/zero | tr '\\0' e >&2`],
      30_000,
      { timeoutMs: 60_000 },
    );
    expect(job.status).toBe("succeeded");
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBe(cap);
    expect(r.stderr.length).toBe(cap);
    expect(r.stdout.length + r.stderr.length).toBeGreaterThan(
      loadConfig({ env: {} }).server.body_limit_bytes,
    );
    expect(r.signed.stdoutHash).toBe(outputHash("o".repeat(cap)));
    await expectSignedBy(r, acc.jobId, worker.publicKey);
  });
});
