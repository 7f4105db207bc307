// A stopped worker leaves no containers behind (issue 15, item 15), with real worker processes
// (`worker/main.ts`, as `npm run worker` runs it) and real Docker: SIGTERM removes its warm
// containers before it exits; after a SIGKILL, the next worker to start on the host removes the
// dead one's leftovers whatever its id, and never touches a live process's containers (other
// tests and workers run on this machine at the same time).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Sandbox } from "../../worker/sandbox";
import { containersOf, docker } from "../sandbox/support";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { repoRoot } from "../support/vectors";
import { workerReady } from "./support/worker-spawn";

const prefix = testPrefix("worker-containers").replace(/:$/, "").replace(/:/g, "-");
const tag = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const sandboxes: Sandbox[] = [];

async function spawnWorker(id: string): Promise<ChildProcess> {
  const dir = await mkdtemp(join(tmpdir(), "sigil-wc-"));
  dirs.push(dir);
  const p = spawn(process.execPath, ["--import", "tsx", "worker/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      SIGIL_DATA_DIR: dir,
      SIGIL_REDIS_PREFIX: prefix,
      SIGIL_SANDBOX_QUEUE: `q-${prefix}`,
      SIGIL_WORKER_ID: id,
      SIGIL_SERVICE_KEYS: "[]",
      // One runc and one runsc warm container: enough to see them go, light on this machine.
      SIGIL_SANDBOX_IMAGES: JSON.stringify(["sigil/busybox:1"]),
      SIGIL_SANDBOX_WARM_POOL_SIZE: "1",
      SIGIL_WORKER_GRACE_MS: "5000",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  procs.push(p);
  await workerReady(p);
  return p;
}

const exited = (p: ChildProcess) =>
  new Promise<number | null>((r) =>
    p.exitCode !== null || p.signalCode !== null ? r(p.exitCode) : p.once("exit", r),
  );

async function until(f: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}

const running = async (id: string) =>
  (await containersOf(id)).filter((c) => c.State === "running").map((c) => c.Id);

/** A live warm pool held by this test process: the live worker whose containers must stay. */
async function livePool(id: string): Promise<string[]> {
  const sb = new Sandbox({
    workerId: id,
    docker,
    images: ["sigil/busybox:1"],
    pools: [{ image: "sigil/busybox:1", tier: "docker", size: 1 }],
  });
  sandboxes.push(sb);
  await sb.warm();
  const ids = await running(id);
  expect(ids).toHaveLength(1);
  return ids;
}

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await Promise.all(sandboxes.map((s) => s.shutdown({ graceMs: 0 })));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  const redis = connectRedis();
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
});

describe("worker containers", () => {
  it("SIGTERM: no container of the worker remains once it has exited", async () => {
    const id = `wc-term-${tag}`;
    const w = await spawnWorker(id);
    await until(async () => (await running(id)).length === 2);
    w.kill("SIGTERM");
    // A repeated signal (a supervisor, Ctrl-C under `npm start`) does not cut the clean-up short.
    setTimeout(() => w.kill("SIGTERM"), 100);
    expect(await exited(w)).toBe(0);
    expect(await containersOf(id)).toEqual([]);
  }, 120_000);

  it("SIGKILL: the next worker removes the leftovers, whatever its id; live pools stay", async () => {
    const deadId = `wc-dead-${tag}`;
    const nextId = `wc-next-${tag}`;
    // Two live pools in this process: one under another id, one under the next worker's own id
    // (two processes may share an id; the later one must not take the other's containers).
    const otherLive = await livePool(`wc-live-${tag}`);
    const sameIdLive = await livePool(nextId);

    const dead = await spawnWorker(deadId);
    await until(async () => (await running(deadId)).length === 2);
    dead.kill("SIGKILL");
    await exited(dead);
    expect((await containersOf(deadId)).length).toBe(2); // what the crash left behind

    const next = await spawnWorker(nextId);
    // Orphans are removed before the worker reports ready.
    expect(await containersOf(deadId)).toEqual([]);
    expect(await running(`wc-live-${tag}`)).toEqual(otherLive);
    expect((await running(nextId)).filter((c) => sameIdLive.includes(c))).toEqual(sameIdLive);

    next.kill("SIGTERM");
    expect(await exited(next)).toBe(0);
    // Its own containers are gone; the live process's, under the same id, are not.
    expect((await containersOf(nextId)).map((c) => c.Id)).toEqual(sameIdLive);
    expect(await running(`wc-live-${tag}`)).toEqual(otherLive);
  }, 180_000);
});
