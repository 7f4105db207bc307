// Sandbox latency per tier: a trivial job through runJob with the warm pool, through runJob
// without a pool (cold), and the anchor: a bare create→start→wait→remove of the same image with
// the same hardening (what docs/architecture.md measured at ~120 ms runc / ~310 ms runsc).
// Variants are interleaved per iteration so machine noise hits them alike; report ratios.
// Run: npx tsx test/bench/sandbox.ts   (needs infra/docker.sh and infra/images.sh)
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import Docker from "dockerode";
import { cleanupOrphans, createOptions, Sandbox, SandboxOptionsSchema } from "../../worker/sandbox";

const IMAGE = "sigil/busybox:1";
const TIERS = ["docker", "gvisor"] as const;
const ITER = Number(process.env.SIGIL_BENCH_ITER ?? 15);

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

export async function bench(): Promise<void> {
  const docker = new Docker();
  const workerId = `bench-${process.pid}`;
  const warm = new Sandbox({
    workerId,
    docker,
    pools: TIERS.map((tier) => ({ image: IMAGE, tier, size: 2 })),
  });
  const cold = new Sandbox({ workerId, docker });
  const cfg = SandboxOptionsSchema.parse({ workerId });
  await warm.warm();

  const rows: {
    tier: string;
    variant: string;
    p50: number;
    p90: number;
    p50Job: number;
    note: string;
  }[] = [];
  try {
    for (const tier of TIERS) {
      const t = {
        warm: [] as number[],
        warmJob: [] as number[],
        cold: [] as number[],
        coldJob: [] as number[],
        anchor: [] as number[],
      };
      let hits = 0;
      for (let i = 0; i < ITER; i++) {
        // Untimed: let the pool refill (steady state where jobs arrive slower than a refill).
        while ((warm.poolStats()[`${IMAGE}/${tier}`] ?? 0) < 2)
          await new Promise((r) => setTimeout(r, 20));
        const spec = { image: IMAGE, tier, command: ["true"] };

        let t0 = performance.now();
        const w = await warm.runJob({ ...spec, jobId: `bench-w-${tier}-${i}` });
        t.warm.push(performance.now() - t0);
        t.warmJob.push(w.durationMs);
        if (w.warm) hits++;
        if (w.status !== "succeeded")
          throw new Error(`warm job failed: ${w.status} ${w.error ?? w.stderr}`);

        t0 = performance.now();
        const c = await cold.runJob({ ...spec, jobId: `bench-c-${tier}-${i}` });
        t.cold.push(performance.now() - t0);
        t.coldJob.push(c.durationMs);
        if (c.status !== "succeeded")
          throw new Error(`cold job failed: ${c.status} ${c.error ?? c.stderr}`);

        // Anchor: same image and hardening, plain command, no stdin protocol, removal included.
        const opts = createOptions(
          cfg,
          { image: IMAGE, tier, memoryMb: 512, cpus: 0.5, pids: 128 },
          { job: "anchor", pool: "cold", run: "bench" },
        );
        t0 = performance.now();
        const ct = await docker.createContainer({
          ...opts,
          Entrypoint: ["true"],
          OpenStdin: false,
          StdinOnce: false,
          AttachStdin: false,
        });
        await ct.start();
        await ct.wait();
        await ct.remove({ force: true });
        t.anchor.push(performance.now() - t0);
      }
      const a50 = pct(t.anchor, 50);
      rows.push(
        {
          tier,
          variant: "anchor create→start→wait→remove",
          p50: a50,
          p90: pct(t.anchor, 90),
          p50Job: Number.NaN,
          note: "",
        },
        {
          tier,
          variant: "runJob, warm pool",
          p50: pct(t.warm, 50),
          p90: pct(t.warm, 90),
          p50Job: pct(t.warmJob, 50),
          note: `${hits}/${ITER} warm hits`,
        },
        {
          tier,
          variant: "runJob, cold (no pool)",
          p50: pct(t.cold, 50),
          p90: pct(t.cold, 90),
          p50Job: pct(t.coldJob, 50),
          note: "",
        },
      );
    }
  } finally {
    await warm.shutdown({ graceMs: 0 });
    await cold.shutdown({ graceMs: 0 });
    await cleanupOrphans(workerId, { docker });
  }

  const f = (n: number) => (Number.isNaN(n) ? "-" : n.toFixed(1));
  console.log(
    `\nsandbox: trivial job (\`true\` in ${IMAGE}), ${ITER} iterations per variant, interleaved; ms`,
  );
  console.log(
    "tier    variant                            p50 ms   p90 ms   p50/anchor  job p50 ms  note",
  );
  for (const r of rows) {
    const anchor =
      rows.find((x) => x.tier === r.tier && x.variant.startsWith("anchor"))?.p50 ?? Number.NaN;
    console.log(
      `${r.tier.padEnd(7)} ${r.variant.padEnd(34)} ${f(r.p50).padStart(7)} ${f(r.p90).padStart(8)} ${(r.p50 / anchor).toFixed(2).padStart(11)} ${f(r.p50Job).padStart(11)}  ${r.note}`,
    );
  }
  console.log(
    "(job p50 = the result's durationMs: job time only, no create/start/pool wait; removal is off the caller's path)",
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  bench().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
