// Draining a worker host (docs/deployment.md "Worker hosts (runbook)"): jobs spread over two
// worker nodes; SIGTERM to one (what `systemctl stop sigil-worker` sends) lets it finish the job
// it is running, and it takes no new one; the other node finishes the queue. Every process (its
// own Redis, an API process, two workers) is started here and killed in afterAll.
import { afterAll, expect, it } from "vitest";
import { isTerminal } from "../../shared/jobs/result";
import { registeredKey } from "../support/targets";
import { Fleet } from "./support/nodes";
import { type SentinelSet, startSentinelSet, waitFor } from "./support/sentinel";

let set: SentinelSet | undefined;
let fleet: Fleet | undefined;
afterAll(async () => {
  await fleet?.stop();
  await set?.stop();
}, 60_000);

const JOBS = 8;

it("SIGTERM drains a worker: its running job finishes, it takes no new one, the other finishes the queue", async () => {
  set = await startSentinelSet({ sentinels: 0 });
  fleet = await Fleet.create();
  const f = fleet;
  const common = {
    REDIS_URL: `redis://127.0.0.1:${set.primary.port}`,
    SIGIL_REDIS_PREFIX: `drain${process.pid}`,
    SIGIL_SANDBOX_QUEUE: "jobs",
  };
  const api = await f.api("api", { ...common, SIGIL_DATA_DIR: f.tempDir("api") });
  const admin = f.client(api.base);
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
  const workerEnv = { ...common, SIGIL_SANDBOX_CONCURRENCY: "1", SIGIL_WORKER_GRACE_MS: "60000" };
  const [w0, w1] = await Promise.all([
    f.worker("drain-0", admin, api.base, workerEnv),
    f.worker("drain-1", admin, api.base, workerEnv),
  ]);
  // One submitter per job: a submitter's running cap never holds a job back.
  const ids: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const agent = f.client(
      api.base,
      await registeredKey(admin, "agent", `drain-agent-${i}`, { trust: 1 }),
    );
    const acc = await agent.jobs.submit({
      image: "sigil/busybox:1",
      command: ["sh", "-c", `sleep 3; echo ${i}`],
      risk: {
        dataSensitivity: 0,
        codeTrustLevel: 1,
        networkAccess: 0,
        filesystemAccess: 0,
        externalApis: 0,
      },
    });
    ids.push(acc.jobId);
  }
  const jobs = () => Promise.all(ids.map((id) => admin.jobs.get(id)));
  // Both nodes busy (concurrency 1 each: two running jobs are one on each): stop drain-0 then.
  await waitFor(
    "a job running on each worker",
    async () => (await jobs()).filter((j) => j.status === "running").length >= 2,
    120_000,
  );
  // What had started when drain-0 was told to stop (running or already ended, as the workers
  // reported to the API): the drained node may finish only those. Its signed startedAt is taken
  // later (at the container's start), so comparing that with this clock would not say what the
  // drain did.
  const startedAtStop = new Set(
    (await jobs())
      .filter((j) => j.status === "running" || isTerminal(j.status))
      .map((j) => String(j.jobId)),
  );
  const stoppedAt = Date.now();
  w0.proc.kill("SIGTERM");
  await w0.exited;
  expect(w0.proc.exitCode, w0.output()).toBe(0);

  await waitFor(
    "every job ended",
    async () => (await jobs()).every((j) => isTerminal(j.status)),
    180_000,
  );
  const done = await jobs();
  for (const j of done) expect(j.status, JSON.stringify(j)).toBe("succeeded");
  const byW0 = done.filter((j) => j.result?.workerId === w0.workerId);
  const byW1 = done.filter((j) => j.result?.workerId === w1.workerId);
  expect(byW0.length + byW1.length).toBe(JOBS);
  // The drained node started nothing after the SIGTERM, and finished what it was running.
  expect(byW0.length).toBeGreaterThan(0);
  for (const j of byW0) expect(startedAtStop.has(String(j.jobId)), String(j.jobId)).toBe(true);
  expect(
    byW0.some(
      (j) => Date.parse((j.result!.signed as { finishedAt: string }).finishedAt) > stoppedAt,
    ),
  ).toBe(true);
  // The other node took the rest of the queue, each once.
  expect(byW1.length).toBeGreaterThan(0);
  for (const j of done) expect(j.attempts, j.jobId as string).toBe(1);
  console.log(
    `[drain] ${byW0.length} jobs on the drained worker (its last finished after SIGTERM), ${byW1.length} on the other`,
  );
}, 235_000);
