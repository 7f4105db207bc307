// kill -9 of a worker process mid-job: the job ends in a recorded state (here: a recorded retry on
// the next worker), never silently lost, never run twice without a record; orphans are removed.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Docker from "dockerode";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadOrCreateWorkerKey } from "../../worker/jobs/keys";
import { type Harness, startHarness, submitLowRisk } from "./support/harness";
import { harnessWorkerEnv, spawnWorkerProc, until, workerReady } from "./support/worker-spawn";

let h: Harness;
let dir: string;
const procs: ChildProcess[] = [];
const WORKER_ID = `crash-${process.pid}`;

function spawnWorker(): ChildProcess {
  return spawnWorkerProc(
    {
      ...harnessWorkerEnv(h, dir, WORKER_ID),
      // Crash recovery is about the job, not the pool: no warm containers to count.
      SIGIL_SANDBOX_WARM_POOL_SIZE: "0",
    },
    procs,
  );
}
const ready = workerReady;

beforeAll(async () => {
  h = await startHarness("crash");
  dir = await mkdtemp(join(tmpdir(), "sigil-crash-"));
  const key = await loadOrCreateWorkerKey(join(dir, "worker"));
  await h.addKey("worker", WORKER_ID, key.signer);
});

afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it("a worker killed mid-job: the job is a recorded retry on the next worker, orphans removed", async () => {
  // Trusted by the admin, so the low-risk job runs on runc.
  const agent = h.client(await h.addKey("agent", "agent-crash", undefined, { trust: 1 }));
  const first = spawnWorker();
  await ready(first);
  const { jobId } = await submitLowRisk(agent, ["sh", "-c", "sleep 3; echo done"]);
  await until(
    async () => ((await h.backend.get(jobId))?.status === "running" ? true : undefined),
    30_000,
  );
  const docker = new Docker();
  const labelled = () =>
    docker.listContainers({ all: true, filters: { label: [`sigil.worker=${WORKER_ID}`] } });
  await until(async () => ((await labelled()).length > 0 ? true : undefined), 10_000);
  first.kill("SIGKILL");
  await new Promise((r) => first.once("exit", r));
  expect((await labelled()).length).toBeGreaterThan(0); // the orphan the crash left behind

  const second = spawnWorker();
  await ready(second);
  const done = await agent.jobs.wait(jobId, 60_000);
  expect(done.status).toBe("succeeded");
  expect(done.result?.stdout).toBe("done\n");
  expect(done.attempts).toBe(2);
  const started = h.audits.filter(
    (a) => a.eventType === "job.started" && a.details.jobId === jobId,
  );
  expect(started.map((a) => [a.details.attempt, a.details.retry])).toEqual([
    [1, false],
    [2, true],
  ]);
  expect(h.audits.some((a) => a.eventType === "job.stalled" && a.details.jobId === jobId)).toBe(
    true,
  );
  expect(
    h.audits.filter((a) => a.eventType === "job.completed" && a.details.jobId === jobId),
  ).toHaveLength(1);
  // The orphan from the first worker is gone (cleaned at start), and nothing is left running.
  await until(async () => ((await labelled()).length === 0 ? true : undefined), 10_000);

  second.kill("SIGTERM");
  expect(await new Promise((r) => second.once("exit", r))).toBe(0);
});
