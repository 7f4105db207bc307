// The warm pool adapts to the arrival rate (docs/sandbox.md, "Warm pool protocol"): a burst of
// takes grows it up to its cap and never beyond, idle time shrinks it back to its floor, a take
// that finds it empty waits for a container under creation or goes cold, and shutdown removes
// every pooled container. Real dockerd and runc; no timing is asserted.
import { afterEach, describe, expect, it } from "vitest";
import type { PoolInfo, Sandbox } from "../../worker/sandbox";
import { BUSYBOX, closeSandbox, containersOf, jobId, newSandbox, TIERS } from "./support";

const opened: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((sb) => closeSandbox(sb)));
});

function pooled(
  name: string,
  tier: (typeof TIERS)[number],
  pool: { size: number; max: number },
  extra: { poolMaxCreating?: number; poolIdleMs?: number } = {},
): Sandbox {
  const sb = newSandbox(name, { pools: [{ image: BUSYBOX, tier, ...pool }], ...extra });
  opened.push(sb);
  return sb;
}

const info = (sb: Sandbox, tier: string): PoolInfo => {
  const i = sb.poolInfo()[`${BUSYBOX}/${tier}`];
  if (!i) throw new Error("no such pool");
  return i;
};

async function until(cond: () => Promise<boolean> | boolean, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Watches the pool's own count (idle + creating) on every turn of a 5 ms timer. */
function watch(sb: Sandbox, tier: string) {
  const seen = { held: 0, creating: 0 };
  const t = setInterval(() => {
    const i = info(sb, tier);
    seen.held = Math.max(seen.held, i.idle + i.creating);
    seen.creating = Math.max(seen.creating, i.creating);
  }, 5);
  return { seen, stop: () => clearInterval(t) };
}

/** Pool containers in dockerd: this worker's warm-labelled ones that served no job. */
async function idleInDocker(sb: Sandbox, served: Set<string>): Promise<number> {
  const list = await containersOf(sb.config.workerId);
  return list.filter((c) => c.Labels["sigil.pool"] === "warm" && !served.has(c.Id)).length;
}

const run = (sb: Sandbox, tier: (typeof TIERS)[number], name: string) =>
  sb.runJob({ jobId: jobId(name), image: BUSYBOX, tier, command: ["true"] });

describe("adaptive warm pool (runc)", () => {
  it("grows up to its cap under a burst of back-to-back jobs and never beyond", async () => {
    const sb = pooled("pool-grow", "docker", { size: 1, max: 3 }, { poolIdleMs: 600_000 });
    await sb.warm();
    expect(info(sb, "docker")).toMatchObject({ idle: 1, target: 1, max: 3 });
    const w = watch(sb, "docker");
    const served = new Set<string>();
    try {
      for (let i = 0; i < 10; i++) {
        const r = await run(sb, "docker", "burst");
        expect(r.status).toBe("succeeded");
        served.add(r.containerId);
      }
      // Growing beyond one-for-one replacement waits for the pause after the burst.
      await until(() => {
        const i = info(sb, "docker");
        return i.idle === 3 && i.creating === 0;
      }, "the pool to grow to its cap");
    } finally {
      w.stop();
    }
    expect(w.seen.held).toBe(3);
    expect(w.seen.creating).toBeLessThanOrEqual(2);
    // The size the burst needed is refilled and kept for the next one (until idle time passes).
    const after = info(sb, "docker");
    expect(after).toMatchObject({ idle: 3, creating: 0, target: 3 });
    // dockerd agrees with the pool's count once the served containers are gone.
    await until(
      async () => (await idleInDocker(sb, served)) === after.idle,
      "dockerd to list exactly the idle containers",
    );
  });

  it("shrinks back to its floor after idle time, and removes what it shed", async () => {
    const sb = pooled("pool-shrink", "docker", { size: 1, max: 4 }, { poolIdleMs: 1500 });
    await sb.warm();
    const served = new Set<string>();
    const w = watch(sb, "docker");
    for (let i = 0; i < 6; i++) served.add((await run(sb, "docker", "shrink")).containerId);
    w.stop();
    expect(w.seen.held).toBeGreaterThan(1);
    await until(() => {
      const i = info(sb, "docker");
      return i.idle === 1 && i.creating === 0;
    }, "the pool to shrink to its floor");
    await until(async () => (await idleInDocker(sb, served)) === 1, "shed containers removed");
    // Still a working pool afterwards.
    const r = await run(sb, "docker", "after-shrink");
    expect(r.status).toBe("succeeded");
    expect(r.warm).toBe(true);
  });

  it("shutdown in the middle of growth leaves no container behind", async () => {
    const sb = pooled("pool-shutdown", "docker", { size: 2, max: 6 }, { poolIdleMs: 600_000 });
    await sb.warm();
    const jobs = Array.from({ length: 4 }, () => run(sb, "docker", "grow-then-stop"));
    await Promise.all(jobs);
    // Creations for the grown target are typically under way right now.
    await sb.shutdown({ graceMs: 0 });
    expect(await containersOf(sb.config.workerId)).toEqual([]);
    expect(info(sb, "docker")).toMatchObject({ idle: 0, creating: 0, waiting: 0 });
  });
});

describe.each(TIERS)("a take from an empty pool (%s)", (tier) => {
  it("waits for the container under creation, or goes cold when there is none", async () => {
    const sb = pooled(`pool-empty-${tier}`, tier, { size: 1, max: 1 }, { poolMaxCreating: 1 });
    await sb.warm();
    expect(info(sb, tier)).toMatchObject({ idle: 1, creating: 0 });
    // Same tick: the first takes the idle one (and starts its replacement), the second waits for
    // that replacement, the third has nothing to wait for and gets a container of its own.
    const [a, b, c] = await Promise.all([
      run(sb, tier, "empty-a"),
      run(sb, tier, "empty-b"),
      run(sb, tier, "empty-c"),
    ]);
    expect([a?.status, b?.status, c?.status]).toEqual(["succeeded", "succeeded", "succeeded"]);
    expect([a?.warm, b?.warm, c?.warm]).toEqual([true, true, false]);
    expect(new Set([a?.containerId, b?.containerId, c?.containerId]).size).toBe(3);
  });

  it("a job waiting for a container when the pool is drained still runs, cold", async () => {
    const sb = pooled(`pool-drain-${tier}`, tier, { size: 1, max: 1 }, { poolMaxCreating: 1 });
    await sb.warm();
    const first = run(sb, tier, "drain-a");
    const waiting = run(sb, tier, "drain-b");
    // take() registers the waiter before runJob's first await.
    expect(info(sb, tier).waiting).toBe(1);
    await sb.drainPools();
    const [a, b] = await Promise.all([first, waiting]);
    expect(a.status).toBe("succeeded");
    expect(b.status).toBe("succeeded");
    expect(b.warm).toBe(false);
  });
});
