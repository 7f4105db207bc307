// Warm pool semantics: one job per container, refill, cold path for non-default limits,
// removal after the job, orphan cleanup, shutdown.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanupOrphans, SandboxClosedError } from "../../worker/sandbox";
import {
  BUSYBOX,
  closeSandbox,
  containersOf,
  docker,
  jobId,
  newSandbox,
  PYTHON,
  TIERS,
  workerIdFor,
} from "./support";

// Only busybox is pooled; python jobs go cold, so concurrent tests never compete for the one
// warm container the first test relies on.
const sb = newSandbox("pool", { pools: TIERS.map((tier) => ({ image: BUSYBOX, tier, size: 1 })) });
beforeAll(() => sb.warm());
afterAll(() => closeSandbox(sb));

async function until(cond: () => Promise<boolean> | boolean, what: string) {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
const poolReady = (tier: string) => () => (sb.poolStats()[`${BUSYBOX}/${tier}`] ?? 0) >= 1;
const gone = (id: string) => async () =>
  docker
    .getContainer(id)
    .inspect()
    .then(
      () => false,
      (e: { statusCode?: number }) => e.statusCode === 404,
    );

describe.concurrent.each(TIERS)("tier %s", (tier) => {
  it("never lets a container serve two jobs", async () => {
    await until(poolReady(tier), "a warm container");
    const first = await sb.runJob({
      jobId: jobId("first"),
      image: BUSYBOX,
      tier,
      language: "sh",
      code: "echo secret > /work/marker; echo secret > /tmp/marker; hostname",
    });
    await until(poolReady(tier), "the pool to refill");
    const second = await sb.runJob({
      jobId: jobId("second"),
      image: BUSYBOX,
      tier,
      language: "sh",
      code: "cat /work/marker /tmp/marker 2>/dev/null || echo clean; hostname",
    });
    expect(first.status).toBe("succeeded");
    expect(second.status).toBe("succeeded");
    expect(first.warm).toBe(true);
    expect(second.warm).toBe(true);
    expect(second.containerId).not.toBe(first.containerId);
    const [firstHost] = first.stdout.trim().split("\n");
    const [state, secondHost] = second.stdout.trim().split("\n");
    expect(state).toBe("clean");
    expect(secondHost).not.toBe(firstHost);
    // Both containers are removed once their job is done.
    await until(gone(first.containerId), "the first container to be removed");
    await until(gone(second.containerId), "the second container to be removed");
  });

  it("gives a job with non-default limits a cold container made for it", async () => {
    const id = jobId("cold");
    const r = await sb.runJob({
      jobId: id,
      image: PYTHON,
      tier,
      command: ["echo", "cold"],
      limits: { memoryMb: 256, pids: 64 },
    });
    expect(r.status).toBe("succeeded");
    expect(r.warm).toBe(false);
    expect(r.stdout).toBe("cold\n");
  });

  it("kills a job whose caller aborts it", async () => {
    const ac = new AbortController();
    const running = sb.runJob(
      { jobId: jobId("abort"), image: PYTHON, tier, command: ["sleep", "60"] },
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 500);
    const r = await running;
    expect(r.status).toBe("killed");
    expect(r.signal).toBe("SIGKILL");
  });
});

describe("orphans and shutdown", () => {
  it("cleanupOrphans removes an earlier run's containers but not this run's", async () => {
    const stale = await docker.createContainer({
      Image: BUSYBOX,
      Labels: {
        "sigil.worker": sb.config.workerId,
        "sigil.run": "an-earlier-run",
        "sigil.job": "old",
      },
      HostConfig: { NetworkMode: "none" },
    });
    await until(poolReady("docker"), "a warm container");
    const removed = await sb.cleanupOrphans();
    expect(removed).toBe(1);
    expect(await gone(stale.id)()).toBe(true);
    expect(poolReady("docker")()).toBe(true);
    const mine = await containersOf(sb.config.workerId);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((c) => c.Labels["sigil.run"] === sb.runId)).toBe(true);
  });

  it("shutdown drains the pool, removes everything and refuses new jobs", async () => {
    const own = newSandbox("pool-shutdown", {
      pools: [{ image: BUSYBOX, tier: "docker", size: 2 }],
    });
    await own.warm();
    expect((await containersOf(own.config.workerId)).length).toBe(2);
    const running = own.runJob({
      jobId: jobId("late"),
      image: BUSYBOX,
      tier: "docker",
      command: ["sleep", "60"],
    });
    await until(
      async () => (await containersOf(own.config.workerId)).length >= 2,
      "the job to start",
    );
    await own.shutdown({ graceMs: 200 });
    expect((await running).status).toBe("killed");
    expect(await containersOf(own.config.workerId)).toEqual([]);
    await expect(
      own.runJob({ jobId: jobId("x"), image: BUSYBOX, tier: "docker", command: ["true"] }),
    ).rejects.toThrow(SandboxClosedError);
  });

  it("a job submitted in the same tick as shutdown() is still aborted, never left running", async () => {
    const own = newSandbox("pool-race");
    const running = own.runJob({
      jobId: jobId("race"),
      image: BUSYBOX,
      tier: "docker",
      command: ["sleep", "60"],
      timeoutMs: 20_000,
    });
    await own.shutdown({ graceMs: 0 });
    expect((await running).status).toBe("killed");
    expect(await containersOf(own.config.workerId)).toEqual([]);
  });

  it("cleanupOrphans without a run id removes everything of that worker", async () => {
    const wid = workerIdFor("pool-orphans");
    await docker.createContainer({
      Image: BUSYBOX,
      Labels: { "sigil.worker": wid },
      HostConfig: { NetworkMode: "none" },
    });
    await docker.createContainer({
      Image: BUSYBOX,
      Labels: { "sigil.worker": wid },
      HostConfig: { NetworkMode: "none" },
    });
    expect(await cleanupOrphans(wid, { docker })).toBe(2);
    expect(await containersOf(wid)).toEqual([]);
  });
});
