// A worker posting a forged result (issue 18; docs/incidents.md "Quarantine"), end to end on a real
// Node API process with detection on, real Redis and a real worker process: worker A (played by the
// test, taking jobs from the queue as the worker's consumer does, so it holds the queue lock a real
// worker would) claims a job and posts a result whose signature fails. That is a high
// `forged-job-result` incident: A is quarantined by its key id and its key revoked, each once, so
// its further reports are refused; the job goes back to the queue and worker B, a real worker node,
// runs it and signs the result. The near miss: a correctly signed result from A, and the same result
// sent again, open nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil, SigilError } from "../../sdk";
import { outputHash, type ResultBody, resultHash, signResult } from "../../shared/jobs";
import { Fleet } from "../deploy/support/nodes";
import { waitFor } from "../deploy/support/sentinel";
import { type ApiJobResult, submitLowRisk } from "../jobs/support/harness";
import { expectSignedBy, resultBody } from "../jobs/support/result";
import { type QueueTaker, startQueueTaker, type Taken } from "../jobs/support/taker";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { registeredKey, type TestKey } from "../support/targets";
import { type TrailEvent, trailEvents } from "../support/trail";

const prefix = testPrefix("forged").replace(/:$/, "");
const queue = "jobs";
const common = { SIGIL_REDIS_PREFIX: prefix, SIGIL_SANDBOX_QUEUE: queue };
const redis = connectRedis();
let fleet: Fleet;
let base: string;
let admin: Sigil;
let agent: Sigil;
let workerA: TestKey;
let taker: QueueTaker;

beforeAll(async () => {
  fleet = await Fleet.create();
  const api = await fleet.api("forged-api", {
    ...common,
    SIGIL_DATA_DIR: fleet.tempDir("forged-api"),
    SIGIL_INCIDENTS_ENABLED: "true",
    SIGIL_INCIDENTS_POLL_MS: "100",
  });
  base = api.base;
  admin = fleet.client(base);
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
  // Trusted by the admin, so its low-risk jobs run on runc.
  agent = fleet.client(base, await registeredKey(admin, "agent", "forged-agent", { trust: 1 }));
  workerA = await registeredKey(admin, "worker", "forged-worker-a");
  taker = await startQueueTaker(redis, prefix, queue);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
  await taker?.close();
  await dropPrefix(redis, `${prefix}:`);
  redis.disconnect();
}, 60_000);

/** Worker A's reports, signed with its key, as the worker's reporter sends them. */
const asA = () => fleet.client(base, workerA);
const workerIdA = "forged-worker-a";
const startedByA = (t: Taken) =>
  asA().jobs.reportResult(t.jobId, {
    type: "started",
    attempt: t.attempt,
    workerId: workerIdA,
    envelopeHash: t.envelopeHash,
    lockHash: t.lockHash,
  });
async function signedByA(t: Taken, stdout: string) {
  const body: ResultBody = resultBody({
    jobId: t.jobId,
    envelopeHash: t.envelopeHash,
    tier: "docker",
    runtime: "runc",
    stdoutHash: outputHash(stdout),
    workerId: workerIdA,
  });
  return { signed: await signResult(body, workerA.signer), stdout, stderr: "" };
}
const resultByA = (t: Taken, r: Awaited<ReturnType<typeof signedByA>>) =>
  asA().jobs.reportResult(t.jobId, {
    type: "result",
    attempt: t.attempt,
    lockHash: t.lockHash,
    ...r,
  });
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: SigilError) => [e.status, e.code],
  );

const trail = () => trailEvents(admin);
const securityEventsOf = (events: TrailEvent[], kid: string) =>
  events.filter((e) => e.eventType === "security.event" && e.details.workerKid === kid);

/** The incident naming this key once it is mitigated. */
async function mitigatedIncidentOf(kid: string) {
  let id = "";
  await waitFor(
    `the incident about ${kid} to be mitigated`,
    async () => {
      const { incidents } = await admin.incidents.list();
      const found = incidents.find((i) => i.keys.includes(kid));
      id = found?.incidentId ?? "";
      return found?.state === "mitigated";
    },
    60_000,
  );
  return admin.incidents.get(id);
}

describe("a worker posting a forged result", () => {
  it("near miss: a correctly signed result from worker A, and that result again, open no incident", async () => {
    const { jobId } = await submitLowRisk(agent, ["echo", "a"]);
    const t = await taker.take(jobId);
    expect(await startedByA(t)).toMatchObject({ outcome: "started", proceed: true });
    const mine = await signedByA(t, "a\n");
    expect(await resultByA(t, mine)).toMatchObject({ outcome: "stored", status: "succeeded" });
    expect(await resultByA(t, mine)).toMatchObject({ outcome: "duplicate" });
    const job = await agent.jobs.get(jobId);
    expect(job).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(job.result).toMatchObject({ kid: workerA.kid, stdout: "a\n" });

    // Detection has read past A's events once it has acted on a later one: a result from a worker
    // key that never claimed the job (refused, `job.result_refused`) is the step A did not take.
    const other = await registeredKey(admin, "worker", "forged-worker-c");
    const byOther = fleet.client(base, other);
    const body = resultBody({ jobId, envelopeHash: t.envelopeHash, stdoutHash: outputHash("") });
    const forged = { signed: await signResult(body, other.signer), stdout: "", stderr: "" };
    expect(
      await refusal(byOther.jobs.reportResult(jobId, { type: "result", attempt: 1, ...forged })),
    ).toEqual([403, "forbidden"]);
    const incident = await mitigatedIncidentOf(other.kid);
    expect(incident.detector).toBe("forged-job-result");

    const { incidents } = await admin.incidents.list();
    expect(incidents.filter((i) => i.keys.includes(workerA.kid))).toEqual([]);
    expect(securityEventsOf(await trail(), workerA.kid)).toEqual([]);
    expect((await admin.keys.get(workerA.kid)).status).toBe("active");
  }, 120_000);

  it("worker A quarantined and revoked once, its job re-queued and finished by worker B", async () => {
    const { jobId } = await submitLowRisk(agent, ["echo", "done"]);
    const t = await taker.take(jobId);
    expect(await startedByA(t)).toMatchObject({ outcome: "started", proceed: true });
    expect((await admin.jobs.get(jobId)).status).toBe("running");
    // Worker B, a real worker node, is up while A holds the job: the queue gives it nothing yet.
    const b = await fleet.worker("forged-b", admin, base, common);

    // A's forgery: it claims output it never produced, under a signature over other output (the
    // body's hash recomputed, so it is the signature that fails).
    const honest = await signedByA(t, "done\n");
    const claimed = { ...honest.signed.result, stdoutHash: outputHash("forged\n") };
    const tampered = {
      ...honest,
      signed: { ...honest.signed, result: claimed, resultHash: resultHash(claimed) },
      stdout: "forged\n",
    };
    expect(await refusal(resultByA(t, tampered))).toEqual([400, "validation"]);

    const incident = await mitigatedIncidentOf(workerA.kid);
    expect(incident).toMatchObject({
      detector: "forged-job-result",
      severity: "high",
      workers: [workerA.kid],
    });
    const done = await admin.jobs.wait(jobId, 120_000);
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(done.result).toMatchObject({ kid: b.kid, workerId: b.workerId, stdout: "done\n" });
    await expectSignedBy(done.result as ApiJobResult, jobId, b.publicKey);
    expect(done.attempts).toBe(2);

    // A is quarantined by its key id and revoked; a further report of A's is refused.
    const { quarantines } = await admin.quarantine.list({ active: "true" });
    const mine = quarantines.filter((q) => q.incidentId === incident.incidentId);
    // The worker, and the key it ran the job with suspended (functions/quarantine-jobs.ts).
    expect(mine.map((q) => q.target)).toEqual(
      expect.arrayContaining([
        { kind: "worker", workerId: workerA.kid },
        { kind: "key", kid: workerA.kid },
      ]),
    );
    expect(mine).toHaveLength(2);
    expect((await admin.keys.get(workerA.kid)).status).toBe("revoked");
    expect(await refusal(startedByA(t))).toEqual([401, "key-unknown"]);

    // Each once on the trail: the incident, the worker's quarantine, the revocation, the re-queue,
    // the completion (by B).
    const events = await trail();
    const about = (type: string) =>
      events.filter((e) => e.eventType === type && e.details.incidentId === incident.incidentId);
    expect(about("incident.opened")).toHaveLength(1);
    expect(about("incident.mitigated")).toHaveLength(1);
    expect(about("quarantine.placed").map((e) => e.details.quarantineId)).toEqual(
      expect.arrayContaining(mine.map((q) => q.id)),
    );
    expect(about("quarantine.placed")).toHaveLength(mine.length);
    expect(
      events.filter((e) => e.eventType === "key.revoked" && e.details.kid === workerA.kid),
    ).toHaveLength(1);
    const forJob = (type: string) =>
      events.filter((e) => e.eventType === type && e.details.jobId === jobId);
    expect(forJob("job.requeued").map((e) => e.details)).toEqual([
      expect.objectContaining({ moved: true, workerId: workerA.kid }),
    ]);
    expect(forJob("job.completed").map((e) => e.details.workerId)).toEqual([b.workerId]);
    expect(
      securityEventsOf(events, workerA.kid).map((e) => [
        e.details.category,
        e.details.reason,
        e.details.jobId,
      ]),
    ).toEqual([["job.result_refused", "bad-signature", jobId]]);
  }, 300_000);
});
