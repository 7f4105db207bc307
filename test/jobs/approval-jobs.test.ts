// Jobs that wait for approval (docs/governance.md "Approvals") on the real path: signed submit →
// held record → approval answered → BullMQ → worker consumer → Docker. Exactly once is counted
// from the worker's start records (the `job.started` audit events and the record's attempts),
// including when the process that should release a job dies at either step of the release.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeNode } from "../../functions/node/compose";
import { startHeldSweep } from "../../functions/node/jobs/held-sweep";
import { RedisJobsBackend } from "../../functions/node/jobs/redis-backend";
import { RELEASE } from "../../functions/node/jobs/scripts";
import { queuePrefix } from "../../platform/node/queue";
import { type Sigil, SigilError } from "../../sdk";
import { ApprovalService, type ApprovalStore, MemoryApprovalStore } from "../../shared/approvals";
import { type Signer, uuidV7, verifyEd25519 } from "../../shared/crypto";
import { envelopeChecks } from "../../shared/jobs";
import { silentLogger } from "../../shared/log";
import { type Consumer, startConsumer } from "../../worker/jobs/consumer";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { type Harness, lowRisk, quiet, startHarness } from "./support/harness";

interface Rig {
  h: Harness;
  requester: Sigil;
  /** Another key of the requester's subject, holding the approver group. */
  sameSubject: Sigil;
  boss: Sigil;
  bossKey: Signer;
  stop(): Promise<void>;
}

async function rig(
  name: string,
  env: Record<string, string>,
  opts: { worker: boolean; sweepHeld?: boolean },
): Promise<Rig> {
  const h = await startHarness(
    name,
    { SIGIL_SANDBOX_WARM_POOL_SIZE: "0", ...env },
    opts.sweepHeld === false ? { sweepHeld: false } : {},
  );
  h.policy.next = {
    decision: "require_approval",
    approver: "supervisor",
    approvers: ["supervisor"],
    reason: "sandbox runs need a supervisor",
    decisionId: "d-approval",
  };
  const requester = h.client(await h.addKey("agent", "agent-a", undefined, { trust: 1 }));
  const sameSubject = h.client(
    await h.addKey("agent", "agent-a", undefined, { groups: ["supervisor"] }),
  );
  const bossKey = await h.addKey("agent", "boss", undefined, { groups: ["supervisor"] });
  const boss = h.client(bossKey);
  let stopWorker = async () => {};
  if (opts.worker) {
    const workerKey = await h.addKey("worker", `${name}-worker`);
    const dir = await mkdtemp(join(tmpdir(), "sigil-apj-"));
    const outbox = new Outbox(join(dir, "outbox"));
    await outbox.init();
    const sandbox = createSandboxDriver(`${name}-worker`, h.config);
    const consumer: Consumer = startConsumer({
      connection: h.redis.duplicate({ maxRetriesPerRequest: null }),
      queueName: h.config.sandbox.queue,
      queuePrefix: queuePrefix(h.prefix),
      concurrency: 2,
      workerId: `${name}-worker`,
      signer: workerKey,
      driver: sandbox.driver,
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
    stopWorker = async () => {
      await consumer.close(5000);
      await sandbox.driver.shutdown();
      await rm(dir, { recursive: true, force: true });
    };
  }
  return {
    h,
    requester,
    sameSubject,
    boss,
    bossKey,
    async stop() {
      await stopWorker();
      await h.close();
    },
  };
}

const submit = (r: Rig, command: string[] = ["echo", "approved"]) =>
  r.requester.jobs.submit({ image: "sigil/busybox:1", command, risk: lowRisk });

const started = (h: Harness, jobId: string) =>
  h.audits.filter((e) => e.eventType === "job.started" && e.details.jobId === jobId).length;
const audited = (h: Harness, type: string, jobId: string) =>
  h.audits.filter((e) => e.eventType === type && e.details.jobId === jobId).length;

async function problemOf(p: Promise<unknown>): Promise<SigilError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SigilError) return e;
    throw e;
  }
  throw new Error("expected a problem response");
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a job that requires approval", () => {
  let r: Rig;
  beforeAll(async () => {
    r = await rig("apj-main", {}, { worker: true });
  }, 60_000);
  afterAll(async () => r?.stop());

  it("202 awaiting_approval; a supervisor approves; it runs exactly once with a signed result", async () => {
    const accepted = await submit(r);
    expect(accepted).toMatchObject({ status: "awaiting_approval", approver: "supervisor" });
    const jobId = accepted.jobId;
    const approvalId = accepted.approvalId!;
    expect(audited(r.h, "job.awaiting_approval", jobId)).toBe(1);
    // Held: signed and stored, not queued.
    const held = await r.requester.jobs.get(jobId);
    expect(held.status).toBe("awaiting_approval");
    expect(await r.h.backend.queue.getJob(jobId)).toBeUndefined();
    const approval = await r.boss.approvals.get(approvalId);
    expect(approval).toMatchObject({
      status: "pending",
      request: { action: "execute", resource: "sandbox", jobId },
    });

    const stream = sse(r.requester, jobId);
    await r.boss.approvals.decide(approvalId, { decision: "approve", reason: "looks fine" });
    const job = await r.requester.jobs.wait(jobId, 60_000);
    const seen = (await stream).map((e) => e.event);
    expect(seen.slice(0, 3)).toEqual(["awaiting_approval", "queued", "started"]);
    expect(seen.at(-1)).toBe("finished");
    expect(job.status).toBe("succeeded");
    expect(job.result?.stdout).toBe("approved\n");
    expect(job.result?.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(job.attempts).toBe(1);
    expect(started(r.h, jobId)).toBe(1);
    expect(audited(r.h, "job.released", jobId)).toBe(1);
    // The approval was spent on this job.
    expect((await r.boss.approvals.get(approvalId)).status).toBe("redeemed");
    // The submitter's feed saw every step.
    const types = (await r.h.backend.events(jobId, undefined, 0)).map((e) => e.type);
    expect(types.slice(0, 3)).toEqual(["awaiting_approval", "queued", "started"]);
    expect(types.at(-1)).toBe("finished");
    // A late release changes nothing.
    expect((await r.h.backend.release(jobId)).outcome).toBe("unchanged");
  }, 90_000);

  it("two identical submissions are two jobs with two approvals", async () => {
    const a = await submit(r, ["true"]);
    const b = await submit(r, ["true"]);
    expect(a.approvalId).not.toBe(b.approvalId);
    await r.boss.approvals.decide(a.approvalId!, { decision: "deny", reason: "no" });
    await r.boss.approvals.decide(b.approvalId!, { decision: "deny", reason: "no" });
  }, 30_000);

  it("denied → rejected, never queued", async () => {
    const { jobId, approvalId } = await submit(r);
    await r.boss.approvals.decide(approvalId!, { decision: "deny", reason: "not today" });
    const job = await r.requester.jobs.wait(jobId, 10_000);
    expect(job.status).toBe("rejected");
    expect(job.reason).toMatch(/denied by boss: not today/);
    expect(audited(r.h, "job.rejected", jobId)).toBe(1);
    expect(await r.h.backend.queue.getJob(jobId)).toBeUndefined();
    expect(started(r.h, jobId)).toBe(0);
    const types = (await r.h.backend.events(jobId, undefined, 0)).map((e) => e.type);
    expect(types).toEqual(["awaiting_approval", "finished"]);
  }, 30_000);

  it("the requester's subject cannot approve its own job (403), and it stays held", async () => {
    const { jobId, approvalId } = await submit(r);
    const e = await problemOf(r.sameSubject.approvals.decide(approvalId!, { decision: "approve" }));
    expect(e.status).toBe(403);
    expect(e.type?.split("/").pop()).toBe("separation-of-duties");
    expect((await r.requester.jobs.get(jobId)).status).toBe("awaiting_approval");
    await r.boss.approvals.decide(approvalId!, { decision: "deny", reason: "cleanup" });
  }, 30_000);

  it("an evaluation cannot spend a job's approval (it names no job): deny, mismatch", async () => {
    const { jobId, approvalId } = await submit(r);
    await r.boss.approvals.decide(approvalId!, { decision: "approve", reason: "for the job" });
    const d = await r.requester.evaluate({
      action: "execute",
      resource: "sandbox",
      context: {},
      approvalId: approvalId!,
    });
    expect(d).toMatchObject({ decision: "deny", approvalRefusal: "mismatch" });
    expect(d.reason).toMatch(/jobId/);
    // The job itself still runs, once.
    expect((await r.requester.jobs.wait(jobId, 60_000)).status).toBe("succeeded");
    expect(started(r.h, jobId)).toBe(1);
  }, 30_000);

  it("a key of the requester's subject reads the held job; another submitter's key does not", async () => {
    const { jobId, approvalId } = await submit(r);
    expect((await r.sameSubject.jobs.get(jobId)).status).toBe("awaiting_approval");
    expect((await problemOf(r.boss.jobs.get(jobId))).status).toBe(404);
    await r.boss.approvals.decide(approvalId!, { decision: "deny", reason: "cleanup" });
  }, 30_000);
});

/** The job's server-sent events through the API, until `finished`. */
async function sse(client: Sigil, jobId: string): Promise<{ event: string; data: unknown }[]> {
  const out: { event: string; data: unknown }[] = [];
  for await (const e of client.jobs.events(jobId, { timeoutMs: 60_000 })) {
    out.push({ event: e.event, data: e.data });
    if (e.event === "finished") break;
  }
  return out;
}

describe("a held job whose approval expires", () => {
  let r: Rig;
  beforeAll(async () => {
    // No sweep here: the expiry is found by the submitter's wait alone.
    r = await rig(
      "apj-expiry",
      { SIGIL_APPROVALS_TIMEOUT_S: "1" },
      { worker: false, sweepHeld: false },
    );
  }, 60_000);
  afterAll(async () => r?.stop());

  it("expired (timeout_s = 1) → rejected, seen by the waiting submitter", async () => {
    const { jobId } = await submit(r);
    const job = await r.requester.jobs.wait(jobId, 10_000);
    expect(job.status).toBe("rejected");
    expect(job.reason).toMatch(/expired/);
    expect(audited(r.h, "job.rejected", jobId)).toBe(1);
    expect(await r.h.backend.queue.getJob(jobId)).toBeUndefined();
  }, 30_000);

  it("the submitter's server-sent events see the expiry end the job, with no sweep running", async () => {
    const { jobId } = await submit(r);
    const seen = await sse(r.requester, jobId);
    expect(seen.map((e) => e.event)).toEqual(["awaiting_approval", "finished"]);
    expect(seen[1]?.data).toMatchObject({ status: "rejected" });
  }, 30_000);
});

describe("crash safety: released exactly once by whoever comes next", () => {
  let r: Rig;
  /** A second API process's Node composition (its own sweep), started mid-test. */
  let second: Awaited<ReturnType<typeof composeNode>> | undefined;
  const extra: RedisJobsBackend[] = [];
  beforeAll(async () => {
    // This API never sweeps and is never asked to decide: it plays the process that died.
    r = await rig("apj-crash", {}, { worker: true, sweepHeld: false });
  }, 60_000);
  afterAll(async () => {
    await second?.close();
    for (const b of extra) await b.close();
    await r?.stop();
  });

  /** Approves through the store itself, as an API killed right after the swap would leave it. */
  async function approveInStore(store: ApprovalStore, approvalId: string) {
    const svc = new ApprovalService({
      store,
      times: { timeoutMs: 900_000, retentionMs: 86_400_000 },
      newId: uuidV7,
    });
    const out = await svc.decide(
      approvalId,
      { decision: "approve", reason: "while the API was down" },
      { kid: r.bossKey.kid, subject: "boss", groups: ["supervisor"] },
    );
    expect(out.ok).toBe(true);
  }

  function backend(): RedisJobsBackend {
    const b = new RedisJobsBackend({
      redis: r.h.redis,
      prefix: r.h.prefix,
      queueName: r.h.config.sandbox.queue,
    });
    extra.push(b);
    return b;
  }

  it("approved while held, no API acting on it: a newly started API's sweep releases it once", async () => {
    const { jobId, approvalId } = await submit(r);
    // The store of the same deployment (same data dir, so the same record MAC key).
    second = await composeNode({
      config: r.h.config,
      redis: r.h.redis,
      log: silentLogger,
      health: [],
      scrypt: { N: 2 ** 14, r: 8, p: 1 },
      reconcile: false,
      sweepHeld: false,
    });
    const store = second.approvals;
    if (!store) throw new Error("the Node composition has an approval store");
    await approveInStore(store, approvalId!);
    await sleep(1500);
    // Nobody released it: the API that would have is gone.
    expect((await r.h.backend.get(jobId))?.status).toBe("awaiting_approval");
    await second.close();
    // "Start an API": its sweep finds the approved approval and releases the job.
    second = await composeNode({
      config: r.h.config,
      redis: r.h.redis,
      log: silentLogger,
      health: [],
      scrypt: { N: 2 ** 14, r: 8, p: 1 },
      reconcile: false,
    });
    const job = await r.requester.jobs.wait(jobId, 60_000);
    expect(job.status).toBe("succeeded");
    expect(job.attempts).toBe(1);
    expect(started(r.h, jobId)).toBe(1);
    // Another sweep and another release do nothing.
    const sweep = startHeldSweep({
      backend: backend(),
      approvals: new ApprovalService({
        store,
        times: { timeoutMs: 900_000, retentionMs: 86_400_000 },
        newId: uuidV7,
      }),
      audit: async () => {},
      intervalMs: 60_000,
    });
    expect(await sweep.sweep()).toBe(0);
    await sweep.close();
    expect((await r.h.backend.release(jobId)).outcome).toBe("unchanged");
    await sleep(1000);
    expect(started(r.h, jobId)).toBe(1);
    expect((await r.h.backend.get(jobId))?.attempts).toBe(1);
    expect(await r.h.redis.zscore(r.h.backend.heldKey, jobId)).toBeNull();
  }, 120_000);

  it("killed between the compare-and-set and the queue add: two sweeps at once add it once", async () => {
    await second?.close();
    second = undefined;
    const { jobId } = await submit(r);
    // The release's compare-and-set alone (awaiting_approval → queued), as a process killed
    // before its queue add leaves it; the job stays in the sweep's set.
    const rec = `${r.h.prefix}:job:{${jobId}}`;
    expect(
      await r.h.redis.eval(RELEASE, 2, rec, `${rec}:ev`, new Date().toISOString(), "{}", "10000"),
    ).toBe("released");
    expect(await r.h.redis.zscore(r.h.backend.heldKey, jobId)).not.toBeNull();
    expect(await r.h.backend.queue.getJob(jobId)).toBeUndefined();
    await sleep(1000);
    expect(started(r.h, jobId)).toBe(0);
    const svc = (b: RedisJobsBackend) =>
      startHeldSweep({
        backend: b,
        approvals: new ApprovalService({
          // A queued job's confirmation reads no approval.
          store: new MemoryApprovalStore(),
          times: { timeoutMs: 900_000, retentionMs: 86_400_000 },
          newId: uuidV7,
        }),
        audit: async () => {},
        intervalMs: 60_000,
      });
    const [s1, s2] = [svc(backend()), svc(backend())];
    await Promise.all([s1.sweep(), s2.sweep(), s1.sweep(), s2.sweep()]);
    const job = await r.requester.jobs.wait(jobId, 60_000);
    expect(job.status).toBe("succeeded");
    await Promise.all([s1.sweep(), s2.sweep()]);
    await sleep(1000);
    expect(started(r.h, jobId)).toBe(1);
    expect((await r.h.backend.get(jobId))?.attempts).toBe(1);
    await s1.close();
    await s2.close();
  }, 120_000);
});
