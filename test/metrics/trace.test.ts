// One trace from an SDK call through the worker (docs/operating.md "Metrics and traces"): the
// client's span → the API's request span (traceparent) → verify, evaluate, audit append → the
// signed envelope's traceparent → the worker's queue wait, container run and report → the API's
// result-report request. Real API (composeNode + createApp), real Redis, the real consumer and
// sandbox driver (runc), an OpenTelemetry SDK with an in-memory exporter. Also the worker's own
// metrics, counted by the same run.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveMetrics } from "../../platform/node/metrics-server";
import { queuePrefix } from "../../platform/node/queue";
import type { Sigil } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { publicKeyFromJwk, verifyEd25519 } from "../../shared/crypto";
import { type Consumer, startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver } from "../../worker/jobs/driver";
import { prometheusWorkerMetrics } from "../../worker/jobs/metrics";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { lowRisk, quiet } from "../jobs/support/harness";
import { installTracing } from "../support/otel";
import { exposition, signedGet } from "../support/prometheus";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { registeredKey, startTarget, type Target, type TestKey } from "../support/targets";

const WORKER_ID = "trace-worker";
const prefix = testPrefix("trace").replace(/:$/, "").replace(/:/g, "-");
const queue = `jobs-${prefix}`;
// No warm pool: every job's container is a miss, and the machine is spared the gVisor pool.
const workerConfig = loadConfig({ env: { SIGIL_SANDBOX_WARM_POOL_SIZE: "0" } });

const tracing = installTracing();
const workerMetrics = prometheusWorkerMetrics();
let node: Target;
let redis: ReturnType<typeof connectRedis>;
let dir: string;
let driver: SandboxDriver | undefined;
let consumer: Consumer | undefined;
let agent: Sigil;
let auditor: TestKey;

beforeAll(async () => {
  redis = connectRedis();
  dir = await mkdtemp(join(tmpdir(), "sigil-trace-"));
  node = await startTarget("node", { SIGIL_REDIS_PREFIX: prefix, SIGIL_SANDBOX_QUEUE: queue });
  const admin = node.client(node.admin);
  // Trusted: its low-risk jobs run on runc (codeTrustLevel is the key's trust).
  agent = node.client(await registeredKey(admin, "agent", "trace-agent", { trust: 1 }));
  auditor = await registeredKey(admin, "auditor", "trace-auditor");
  const worker = await registeredKey(admin, "worker", WORKER_ID);
  await admin.policies.put("sandbox", "policy jobs {\n  allow: execute(sandbox)\n}");
  const jwks = (await (await fetch(`${node.url}/.well-known/sigil/keys`)).json()) as {
    keys: { kid: string; role: string; x: string; status: string }[];
  };
  const service = jwks.keys.find((k) => k.role === "service" && k.status === "active")!;
  const serviceKey = publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: service.x });

  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  driver = createSandboxDriver(WORKER_ID, workerConfig).driver;
  consumer = startConsumer({
    connection: redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: queue,
    queuePrefix: queuePrefix(prefix),
    concurrency: 1,
    workerId: WORKER_ID,
    signer: worker.signer,
    driver,
    reporter: apiReporter(node.client(worker)),
    outbox,
    envelope: {
      serviceKey: async (kid) => (kid === service.kid ? serviceKey : undefined),
      verify: verifyEd25519,
      sandbox: workerConfig.sandbox,
      defaultTier: workerConfig.security.default_sandbox_tier,
      thresholds: {
        medium: workerConfig.risk.medium_threshold,
        high: workerConfig.risk.high_threshold,
      },
    },
    log: quiet,
    metrics: workerMetrics,
  });
  await consumer.worker.waitUntilReady();
}, 120_000);

afterAll(async () => {
  await consumer?.close(5000);
  await driver?.shutdown();
  await node?.stop();
  if (redis) {
    await dropPrefix(redis, `${prefix}:`);
    redis.disconnect();
  }
  if (dir) await rm(dir, { recursive: true, force: true });
  await tracing.uninstall();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("one trace from an SDK call through the worker", () => {
  it("has verify, evaluate, audit append, queue wait, container run and report in order, under one trace id", async () => {
    const before = exposition((await workerMetrics.expose()).body);
    const tracer = trace.getTracer("test");
    const { jobId, traceId } = await tracer.startActiveSpan("client submit", async (span) => {
      try {
        const accepted = await agent.jobs.submit({
          image: "sigil/busybox:1",
          command: ["echo", "traced"],
          risk: lowRisk,
        });
        return { jobId: accepted.jobId, traceId: span.spanContext().traceId };
      } finally {
        span.end();
      }
    });
    const job = await agent.jobs.wait(jobId, 60_000);
    expect(job.status).toBe("succeeded");

    // The worker's report span ends once the API answered its result report.
    let spans: ReadableSpan[] = [];
    for (let i = 0; i < 100; i++) {
      spans = tracing.exporter.getFinishedSpans();
      if (spans.some((s) => s.name === "sigil.report")) break;
      await sleep(100);
    }
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const first = (name: string) => {
      const s = inTrace.find((x) => x.name === name);
      expect(
        s,
        `span ${name} in the trace; have ${inTrace.map((x) => x.name).join(", ")}`,
      ).toBeDefined();
      return s!;
    };
    const ns = (t: [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

    const submit = first("POST /v1/jobs");
    const client = first("client submit");
    expect(submit.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
    const verify = first("sigil.verify");
    const evaluate = first("sigil.evaluate");
    const audit = first("sigil.audit.append");
    const wait = first("sigil.queue.wait");
    const run = first("sigil.container.run");
    const report = first("sigil.report");
    const resultRequest = first("POST /v1/jobs/:id/result");
    // Verify, evaluate and the audit append run inside the submit request.
    for (const s of [verify, evaluate, audit])
      expect(s.parentSpanContext?.spanId).toBe(submit.spanContext().spanId);
    // The worker's spans continue the submit request's span (the envelope's traceparent).
    for (const s of [wait, run, report])
      expect(s.parentSpanContext?.spanId).toBe(submit.spanContext().spanId);
    // The result report reaches the API as a child of the worker's report span.
    expect(
      inTrace.some(
        (s) =>
          s.name === "POST /v1/jobs/:id/result" &&
          s.parentSpanContext?.spanId === report.spanContext().spanId,
      ),
    ).toBe(true);
    expect(resultRequest.spanContext().traceId).toBe(traceId);
    // In order: each starts after the one before it (the queue wait ends before the run).
    expect(ns(verify.startTime) <= ns(evaluate.startTime)).toBe(true);
    expect(ns(evaluate.startTime) <= ns(audit.startTime)).toBe(true);
    expect(ns(audit.startTime) <= ns(run.startTime)).toBe(true);
    expect(ns(wait.endTime) <= ns(run.startTime)).toBe(true);
    expect(ns(run.endTime) <= ns(report.startTime)).toBe(true);

    // The worker's metrics moved by this one job.
    const after = exposition((await workerMetrics.expose()).body);
    const delta = (name: string, labels: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels);
    expect(delta("sigil_worker_jobs_total", { tier: "docker", status: "succeeded" })).toBe(1);
    expect(delta("sigil_worker_warm_pool_total", { tier: "docker", result: "miss" })).toBe(1);
    expect(after.count("sigil_worker_job_run_seconds", { tier: "docker" })).toBe(1);
    expect(after.count("sigil_worker_queue_wait_seconds")).toBe(1);
    expect(after.value("sigil_worker_jobs_running")).toBe(0);

    // And the API's: one job submitted on the docker tier, one allowed decision for it.
    const api = exposition(await (await signedGet(`${node.url}/metrics`, auditor)).text());
    expect(api.value("sigil_jobs_submitted_total", { tier: "docker" })).toBe(1);
    expect(api.value("sigil_audit_appends_total", { event_type: "job.submitted" })).toBe(1);
  }, 120_000);

  it("the worker's metrics address serves the exposition unsigned", async () => {
    const s = await serveMetrics("127.0.0.1:0", workerMetrics, () => undefined);
    try {
      const r = await fetch(`http://127.0.0.1:${s.port}/metrics`);
      expect(r.status).toBe(200);
      const families = exposition(await r.text()).families.map((f) => f.name);
      expect(families).toEqual(
        expect.arrayContaining([
          "sigil_worker_jobs_total",
          "sigil_worker_job_run_seconds",
          "sigil_worker_queue_wait_seconds",
          "sigil_worker_warm_pool_total",
          "sigil_worker_jobs_running",
        ]),
      );
    } finally {
      await s.close();
    }
  });
});
