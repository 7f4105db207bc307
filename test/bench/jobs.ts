// Sandbox jobs as a user sees them: submit → signed result through the whole path (signed HTTP
// submit, policy, envelope, BullMQ, worker verify, sandbox, signed report, long-poll), per tier,
// in three patterns, each as a ratio to the cold anchor measured in the same run:
//   - cold anchor: the same job through the same path with the warm pool disabled;
//   - back to back: N sequential jobs, each submitted as soon as the previous result arrived,
//     starting from a pool at its configured size (what `npm start` leaves), nothing in between;
//     then the same again once the pool has settled at what the first batch grew it to;
//   - steady rate: jobs arriving at a fixed rate whatever the latency (open loop), p50 and p99.
// Then the path with the sandbox skipped (what the rest of the path costs), a bare BullMQ round
// trip, and jobs/s at saturation. `npm run bench -- jobs`
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Queue, QueueEvents, Worker } from "bullmq";
import { verifyEd25519 } from "../../shared/crypto";
import type { Tier } from "../../shared/risk";
import { startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver, SandboxRunResult } from "../../worker/jobs/driver";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { lowRisk, quiet, startHarness } from "../jobs/support/harness";

const IMAGE = "sigil/busybox:1";
const N = { cold: { docker: 10, gvisor: 8 }, backToBack: 15, rate: 40 } as const;
/** Arrivals per second in the steady-rate pattern (SIGIL_BENCH_RATE to change it). */
const RATE = Number(process.env.SIGIL_BENCH_RATE ?? 5);
/** Goal (issue #16): back-to-back p50 ≤ this × the cold anchor's p50, on both tiers. */
const GOAL = 0.25;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}

export async function bench(): Promise<void> {
  if (!(RATE > 0 && RATE <= 100)) throw new Error("SIGIL_BENCH_RATE must be a rate in (0, 100]");
  const h = await startHarness("bench");
  const dir = await mkdtemp(join(tmpdir(), "sigil-bench-"));
  // Trusted by the admin: its low-risk jobs run on runc (codeTrustLevel is the key's trust). An
  // untrusted key's jobs always run on the default tier, gVisor.
  const agents = {
    docker: h.client(await h.addKey("agent", "bench-agent", undefined, { trust: 1 })),
    gvisor: h.client(await h.addKey("agent", "bench-agent-untrusted")),
  };
  const workerKey = await h.addKey("worker", "bench-worker");
  // The product's driver as configured ([sandbox] warm_pool_size), and the same with no pool.
  const floor = h.config.sandbox.warm_pool_size;
  const pooled = createSandboxDriver("bench-worker", h.config);
  const cold = createSandboxDriver("bench-worker-cold", {
    ...h.config,
    sandbox: { ...h.config.sandbox, warm_pool_size: 0 },
  });
  await pooled.warm();
  // Which driver the consumer's jobs go to; "skip" returns at once (the path's own cost).
  let use: "pooled" | "cold" | "skip" = "pooled";
  let warmHits = 0;
  const measured: SandboxDriver = {
    runJob: async (spec, o) => {
      if (use === "skip") return instantResult(spec.tier);
      const r = await (use === "pooled" ? pooled : cold).driver.runJob(spec, o);
      if ("warm" in r && r.warm === true) warmHits++;
      return r;
    },
    cleanupOrphans: (id) => pooled.driver.cleanupOrphans(id),
    shutdown: async () => {
      await pooled.driver.shutdown();
      await cold.driver.shutdown();
    },
  };
  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  const concurrency = h.config.sandbox.concurrency;
  const consumer = startConsumer({
    connection: h.redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: h.config.sandbox.queue,
    queuePrefix: `{${h.prefix}}`,
    concurrency,
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

  /** One job through the whole path; ms from `since` (default: now) to its signed result. */
  const runPath = async (tier: Tier, since = performance.now()) => {
    const agent = agents[tier];
    const acc = await agent.jobs.submit({
      image: IMAGE,
      command: ["true"],
      ...(tier === "docker" ? { risk: lowRisk } : {}),
    });
    if (acc.tier !== tier) throw new Error(`job landed on ${acc.tier}, not ${tier}`);
    const done = await agent.jobs.wait(acc.jobId, 60_000);
    if (done.status !== "succeeded" || !done.result?.signature)
      throw new Error(`job ${done.status}`);
    return performance.now() - since;
  };
  /** The pool as a user finds it after a pause: refilled to its target, nothing being created. */
  const settle = async (tier: Tier) => {
    const ready = () => {
      const i = pooled.poolInfo()[`${IMAGE}/${tier}`];
      return i !== undefined && i.creating === 0 && i.idle >= Math.max(floor, i.target);
    };
    for (let i = 0; i < 600 && !ready(); i++) await sleep(50);
    await sleep(500);
    return String(pooled.poolInfo()[`${IMAGE}/${tier}`]?.idle ?? 0);
  };
  const phase = async (f: () => Promise<number[]>) => {
    warmHits = 0;
    const xs = await f();
    return { xs, hits: warmHits };
  };

  const rows: string[][] = [];
  const row = (
    what: string,
    xs: number[],
    o: { anchor?: number; hits?: string; note?: string; digits?: number; pool?: string } = {},
  ) => {
    const digits = o.digits ?? 1;
    const anchor = o.anchor ?? Number.NaN;
    rows.push([
      what,
      String(xs.length),
      o.pool ?? "",
      pct(xs, 50).toFixed(digits),
      (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(digits),
      pct(xs, 99).toFixed(digits),
      Number.isNaN(anchor) ? "" : (pct(xs, 50) / anchor).toFixed(2),
      o.hits ?? "",
      o.note ?? "",
    ]);
  };
  const hits = (p: { xs: number[]; hits: number }) => `${p.hits}/${p.xs.length}`;

  try {
    for (const tier of ["docker", "gvisor"] as const) {
      const rt = tier === "docker" ? "runc" : "runsc";
      use = "cold";
      await runPath(tier); // warm-up: image cache, code paths
      const c = await phase(async () => {
        const xs: number[] = [];
        for (let i = 0; i < N.cold[tier]; i++) xs.push(await runPath(tier));
        return xs;
      });
      const anchor = pct(c.xs, 50);
      row(`${rt}: cold anchor (no warm pool)`, c.xs, { anchor, hits: hits(c), pool: "0" });

      use = "pooled";
      for (const what of ["back to back", "back to back again"]) {
        const pool = await settle(tier);
        const b = await phase(async () => {
          const xs: number[] = [];
          for (let i = 0; i < N.backToBack; i++) xs.push(await runPath(tier));
          return xs;
        });
        const met = pct(b.xs, 50) / anchor <= GOAL ? "met" : "NOT met";
        row(`${rt}: ${what}`, b.xs, {
          anchor,
          hits: hits(b),
          pool,
          note: `goal ≤ ${GOAL}: ${met}`,
        });
      }

      const pool = await settle(tier);
      const r = await phase(async () => {
        const t0 = performance.now();
        return Promise.all(
          Array.from({ length: N.rate }, async (_, i) => {
            const at = t0 + (i * 1000) / RATE;
            await sleep(at - performance.now());
            // From the scheduled arrival, so a late event loop is not hidden from the result.
            return runPath(tier, at);
          }),
        );
      });
      row(`${rt}: ${RATE} jobs/s arriving`, r.xs, { anchor, hits: hits(r), pool });
    }

    use = "skip";
    const path: number[] = [];
    for (let i = 0; i < 30; i++) path.push(await runPath("docker"));
    use = "pooled";
    row("whole path, sandbox skipped", path);

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
    for (let i = 0; i < 100; i++) {
      const t = performance.now();
      const j = await q.add("x", {}, { removeOnComplete: { count: 1000 } });
      await j.waitUntilFinished(qe);
      bare.push(performance.now() - t);
    }
    row("bare BullMQ add→process→complete", bare, { digits: 2 });
    await w.close();
    await qe.close();
    await q.obliterate({ force: true });
    await q.close();
    conn.disconnect();

    // Saturation: many trivial runc jobs in flight at once, through the whole path.
    await settle("docker");
    const M = 24;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: M }, () => runPath("docker")));
    const s = (performance.now() - t0) / 1000;
    rows.push([
      `saturation: ${M} runc jobs at once`,
      String(M),
      "",
      "",
      "",
      "",
      "",
      "",
      `${(M / s).toFixed(2)} jobs/s (worker concurrency ${concurrency})`,
    ]);
  } finally {
    await consumer.close(10_000);
    await measured.shutdown();
    await h.close();
    await rm(dir, { recursive: true, force: true });
  }

  console.log(
    `\nsandbox jobs, \`true\` in ${IMAGE}, submit → signed result; ms; ratio = p50 ÷ the tier's cold anchor p50 in this run`,
  );
  const head = [
    "measure",
    "n",
    "pool at start",
    "p50",
    "mean",
    "p99",
    "× cold",
    "warm hits",
    "note",
  ];
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(line(r));
}

function instantResult(tier: Tier): SandboxRunResult {
  const now = new Date().toISOString();
  return {
    status: "succeeded",
    exitCode: 0,
    signal: null,
    stdout: "",
    stderr: "",
    truncated: false,
    durationMs: 0,
    startedAt: now,
    finishedAt: now,
    runtime: tier === "gvisor" ? "runsc" : "runc",
  };
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
