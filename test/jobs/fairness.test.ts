// Fair scheduling (docs/governance.md "Quotas, rate limits and fair scheduling") on the real path:
// signed submit → BullMQ → worker consumer → Docker/gVisor. One agent's backlog must not hold
// another agent's job behind it, one submitter never runs more than its running cap at once, and
// a submitter with its queued cap of unfinished jobs is refused (429) atomically. Ordering is read
// from the jobs' recorded start and finish times, never from how long anything took.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queuePrefix } from "../../platform/node/queue";
import { type JobRecord, type Sigil, SigilError } from "../../sdk";
import { type Signer, verifyEd25519 } from "../../shared/crypto";
import { signRequest } from "../../shared/httpsig";
import { envelopeChecks } from "../../shared/jobs";
import { type Consumer, startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver } from "../../worker/jobs/driver";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { type Harness, quiet, startHarness } from "./support/harness";

interface Rig {
  h: Harness;
  a: Sigil;
  b: Sigil;
  stop(): Promise<void>;
}

/** A harness with agents A and B and one worker consumer of `concurrency` slots. */
async function rig(name: string, concurrency: number, env: Record<string, string>): Promise<Rig> {
  const h = await startHarness(name, { SIGIL_SANDBOX_WARM_POOL_SIZE: "0", ...env });
  const a = h.client(await h.addKey("agent", "agent-a"));
  const b = h.client(await h.addKey("agent", "agent-b"));
  const workerKey = await h.addKey("worker", `${name}-worker`);
  const dir = await mkdtemp(join(tmpdir(), "sigil-fair-"));
  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  const sandbox = createSandboxDriver(`${name}-worker`, h.config);
  const driver: SandboxDriver = sandbox.driver;
  const consumer: Consumer = startConsumer({
    connection: h.redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: h.config.sandbox.queue,
    queuePrefix: queuePrefix(h.prefix),
    concurrency,
    workerId: `${name}-worker`,
    signer: workerKey,
    driver,
    reporter: apiReporter(h.client(workerKey)),
    outbox,
    envelope: envelopeChecks(
      h.config,
      async (kid) => (kid === h.service.kid ? h.service.publicKey : undefined),
      verifyEd25519,
    ),
    log: quiet,
    deferMs: 200,
  });
  await consumer.worker.waitUntilReady();
  return {
    h,
    a,
    b,
    async stop() {
      await consumer.close(5000);
      await driver.shutdown();
      await h.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const sleepJob = (client: Sigil, seconds: number) =>
  client.jobs.submit({ image: "sigil/busybox:1", command: ["sleep", String(seconds)] });

async function finished(client: Sigil, ids: string[]): Promise<JobRecord[]> {
  const out = await Promise.all(ids.map((id) => client.jobs.wait(id, 120_000)));
  for (const r of out) expect(r.status).toBe("succeeded");
  return out;
}

// Server timestamps (RFC 3339); a missing one is NaN, which fails every comparison.
const at = (iso: unknown) => Date.parse(String(iso));

describe("round robin over submitters", () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig("fair-rr", 1, {});
  }, 60_000);
  afterAll(async () => r?.stop());

  it("B's one job starts after at most one of A's backlog, not after all of it", async () => {
    const aIds: string[] = [];
    for (let i = 0; i < 4; i++) aIds.push((await sleepJob(r.a, 1)).jobId);
    const bId = (await r.b.jobs.submit({ image: "sigil/busybox:1", command: ["true"] })).jobId;
    const aJobs = await finished(r.a, aIds);
    const [bJob] = await finished(r.b, [bId]);
    // One worker slot: jobs start one after another, in the order the queue hands them out.
    const order = [...aJobs, bJob!]
      .sort((x, y) => at(x.startedAt) - at(y.startedAt))
      .map((j) => j.jobId);
    expect(order.indexOf(bId)).toBeLessThanOrEqual(1);
    // A's own jobs still run in the order A submitted them.
    expect(order.filter((id) => id !== bId)).toEqual(aIds);
  }, 120_000);
});

describe("running cap per submitter", () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig("fair-cap", 2, { SIGIL_LIMITS_RUNNING_JOBS: "1" });
  }, 60_000);
  afterAll(async () => r?.stop());

  it("A never runs two jobs at once on a two-slot worker; B's job takes the other slot", async () => {
    const aIds: string[] = [];
    for (let i = 0; i < 3; i++) aIds.push((await sleepJob(r.a, 1)).jobId);
    const bId = (await sleepJob(r.b, 1)).jobId;
    const aJobs = (await finished(r.a, aIds)).sort((x, y) => at(x.startedAt) - at(y.startedAt));
    const [bJob] = await finished(r.b, [bId]);
    // Each of A's jobs starts only after the one before it has finished.
    for (let i = 1; i < aJobs.length; i++)
      expect(at(aJobs[i]!.startedAt)).toBeGreaterThanOrEqual(at(aJobs[i - 1]!.finishedAt));
    // The cap is A's, not the worker's: B ran while one of A's jobs was running.
    const overlaps = aJobs.some(
      (j) => at(bJob!.startedAt) < at(j.finishedAt) && at(j.startedAt) < at(bJob!.finishedAt),
    );
    expect(overlaps).toBe(true);
    // Being moved back for the cap is not an attempt: every job ran once, as attempt 1.
    for (const j of aJobs) expect(j.attempts).toBe(1);
  }, 120_000);
});

describe("queued cap per submitter", () => {
  let h: Harness;
  let signerA: Signer;
  let a: Sigil;
  let b: Sigil;
  beforeAll(async () => {
    // No worker: submitted jobs stay queued (unfinished).
    h = await startHarness("fair-queued", { SIGIL_LIMITS_QUEUED_JOBS: "3" });
    signerA = await h.addKey("agent", "agent-a");
    a = h.client(signerA);
    b = h.client(await h.addKey("agent", "agent-b"));
  });
  afterAll(async () => h?.close());

  it("concurrent submits past the cap: exactly the cap is queued, the rest 429 with Retry-After", async () => {
    const tries = await Promise.allSettled(
      Array.from({ length: 8 }, () =>
        a.jobs.submit({ image: "sigil/busybox:1", command: ["true"] }),
      ),
    );
    const accepted = tries.filter((t) => t.status === "fulfilled");
    expect(accepted).toHaveLength(3);
    for (const t of tries) {
      if (t.status === "fulfilled") continue;
      const e = t.reason as SigilError;
      expect(e).toBeInstanceOf(SigilError);
      expect([e.status, e.code]).toEqual([429, "rate-limited"]);
    }
    // Another submitter has its own cap.
    expect((await b.jobs.submit({ image: "sigil/busybox:1", command: ["true"] })).status).toBe(
      "queued",
    );
    // Once full, a submit is refused before any policy or audit work.
    const seen = h.policy.seen.length;
    const audited = h.audits.length;
    const res = await rawSubmit(h.baseUrl, signerA);
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(h.policy.seen.length).toBe(seen);
    // (A 429 is audited as limit.exceeded, aggregated per key and limit; nothing else is.)
    expect(h.audits.slice(audited).filter((e) => e.eventType !== "limit.exceeded")).toEqual([]);
  });
});

/** A signed submit as raw HTTP, so the test can read the response's headers. */
async function rawSubmit(baseUrl: string, signer: Signer): Promise<Response> {
  const url = `${baseUrl}/v1/jobs`;
  const body = JSON.stringify({ image: "sigil/busybox:1", command: ["true"] });
  const headers: Record<string, string> = { "content-type": "application/json" };
  const sig = await signRequest({ method: "POST", url, headers, body }, signer, {
    keyid: signer.kid,
  });
  return fetch(url, { method: "POST", headers: { ...headers, ...sig }, body });
}
