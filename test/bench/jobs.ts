// Sandbox jobs: submit → signed-result latency per tier through the whole path (signed HTTP submit,
// policy, envelope, BullMQ, worker verify, sandbox, signed report, long-poll), beside its anchors
// measured in the same run: a cold create→start→wait→remove of the same image, and a bare BullMQ
// round trip. Then jobs/s at saturation. `npx tsx test/bench/jobs.ts`
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Queue, QueueEvents, Worker } from "bullmq";
import Docker from "dockerode";
import { verifyEd25519 } from "../../shared/crypto";
import type { Tier } from "../../shared/risk";
import { startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver } from "../../worker/jobs/driver";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { lowRisk, quiet, startHarness } from "../jobs/support/harness";

const IMAGE = "sigil/busybox:1";
const N = { docker: 15, gvisor: 10 } as const;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

async function coldContainer(docker: Docker, tier: Tier): Promise<number> {
  const t = performance.now();
  const c = await docker.createContainer({
    Image: IMAGE,
    Entrypoint: ["/bin/true"],
    User: "1000:1000",
    NetworkDisabled: true,
    HostConfig: {
      Runtime: tier === "gvisor" ? "runsc" : "runc",
      NetworkMode: "none",
      ReadonlyRootfs: true,
    },
  });
  await c.start();
  await c.wait();
  await c.remove({ force: true });
  return performance.now() - t;
}

export async function bench(): Promise<void> {
  const h = await startHarness("bench");
  const dir = await mkdtemp(join(tmpdir(), "sigil-bench-"));
  // Trusted by the admin: its low-risk jobs run on runc (codeTrustLevel is the key's trust).
  const agent = h.client(await h.addKey("agent", "bench-agent", undefined, { trust: 1 }));
  const workerKey = await h.addKey("worker", "bench-worker");
  // The product's driver, with its warm pool filled before measuring.
  const sandbox = createSandboxDriver("bench-worker", h.config);
  await sandbox.warm();
  const driver: SandboxDriver = sandbox.driver;
  const driverName = "worker/sandbox (warm pool)";
  // For one row the sandbox is skipped (instant result), to show what the path itself costs.
  let skipSandbox = false;
  const real = driver;
  const measured: SandboxDriver = {
    runJob: (spec, o) => {
      if (!skipSandbox) return real.runJob(spec, o);
      const now = new Date().toISOString();
      return Promise.resolve({
        status: "succeeded",
        exitCode: 0,
        signal: null,
        stdout: "",
        stderr: "",
        truncated: false,
        durationMs: 0,
        startedAt: now,
        finishedAt: now,
        runtime: spec.tier === "gvisor" ? "runsc" : "runc",
      });
    },
    cleanupOrphans: (id) => real.cleanupOrphans(id),
    shutdown: () => real.shutdown(),
  };
  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  const consumer = startConsumer({
    connection: h.redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: h.config.sandbox.queue,
    queuePrefix: `{${h.prefix}}`,
    concurrency: 2,
    workerId: "bench-worker",
    signer: workerKey,
    driver: measured,
    reporter: apiReporter(h.client(workerKey)),
    outbox,
    envelope: {
      serviceKey: async (kid) => (kid === h.service.kid ? h.service.publicKey : undefined),
      verify: verifyEd25519,
      sandbox: h.config.sandbox,
      defaultTier: "gvisor",
      thresholds: { medium: 0.3, high: 0.7 },
    },
    log: quiet,
  });
  await consumer.worker.waitUntilReady();
  const docker = new Docker();

  const rows: string[][] = [];
  const runPath = async (tier: Tier) => {
    const t = performance.now();
    const acc = await agent.jobs.submit({
      image: IMAGE,
      command: ["true"],
      ...(tier === "docker" ? { risk: lowRisk } : {}),
    } as never);
    const done = await agent.jobs.wait(acc.jobId, 60_000);
    if (done.status !== "succeeded" || !done.result?.signature)
      throw new Error(`job ${done.status}`);
    return performance.now() - t;
  };

  try {
    for (const tier of ["docker", "gvisor"] as const) {
      await runPath(tier); // warm-up
      await coldContainer(docker, tier);
      const ours: number[] = [];
      const cold: number[] = [];
      // Interleaved, so both see the same machine noise.
      for (let i = 0; i < N[tier]; i++) {
        ours.push(await runPath(tier));
        cold.push(await coldContainer(docker, tier));
      }
      const goal = tier === "docker" ? 60 : 90;
      rows.push([
        `submit→signed result (${tier === "docker" ? "runc" : "runsc"})`,
        pct(ours, 50).toFixed(1),
        pct(ours, 90).toFixed(1),
        `cold create→start→wait→rm ${pct(cold, 50).toFixed(1)} / ${pct(cold, 90).toFixed(1)}`,
        (pct(ours, 50) / pct(cold, 50)).toFixed(2),
        `goal p50 ≤ ${goal} ms: ${pct(ours, 50) <= goal ? "met" : "NOT met"}`,
      ]);
    }

    skipSandbox = true;
    const path: number[] = [];
    for (let i = 0; i < 50; i++) path.push(await runPath("docker"));
    skipSandbox = false;
    rows.push([
      "whole path, sandbox skipped (our overhead)",
      pct(path, 50).toFixed(1),
      pct(path, 90).toFixed(1),
      "",
      "",
      "",
    ]);

    // Bare BullMQ round trip on the same Redis, beside the full path.
    const qname = `${h.config.sandbox.queue}-bare`;
    const prefix = `{${h.prefix}}`;
    const conn = h.redis.duplicate({ maxRetriesPerRequest: null });
    const q = new Queue(qname, { connection: conn, prefix });
    const qe = new QueueEvents(qname, {
      connection: h.redis.duplicate({ maxRetriesPerRequest: null }),
      prefix,
    });
    const w = new Worker(qname, async () => 1, { connection: conn, prefix, concurrency: 1 });
    await Promise.all([qe.waitUntilReady(), w.waitUntilReady()]);
    const bare: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const j = await q.add("x", {}, { removeOnComplete: { count: 1000 } });
      await j.waitUntilFinished(qe);
      bare.push(performance.now() - t);
    }
    rows.push([
      "bare BullMQ add→process→complete",
      pct(bare, 50).toFixed(2),
      pct(bare, 90).toFixed(2),
      "(anchor)",
      "",
      "",
    ]);
    await w.close();
    await qe.close();
    await q.obliterate({ force: true });
    await q.close();
    conn.disconnect();

    // Saturation: many trivial runc jobs in flight at once, through the whole path.
    const M = 24;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: M }, () => runPath("docker")));
    const s = (performance.now() - t0) / 1000;
    rows.push([
      `saturation: ${M} runc jobs, concurrency ${2}`,
      "",
      "",
      `${(M / s).toFixed(2)} jobs/s`,
      "",
      "",
    ]);
  } finally {
    await consumer.close(10_000);
    await driver.shutdown();
    await h.close();
    await rm(dir, { recursive: true, force: true });
  }

  console.log(`\nsandbox jobs (driver: ${driverName}); times in ms`);
  const head = ["measure", "p50", "p90", "anchor p50 / p90 (same run)", "ratio p50", "note"];
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(line(r));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  bench().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
