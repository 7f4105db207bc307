// Cross-worker results (issue 15, item 4): a job's result is accepted only from the worker key that
// claimed the attempt, and a key claims an attempt only by proving it holds the queue's lock for it
// (the BullMQ lock the queue set when it handed that worker the job). Any other worker key gets a
// 403 and a high-severity security event; the real worker's result is then accepted. On Node, and
// through the edge (workerd), whose job calls go to the Node job gateway: the gateway verifies a
// forwarded result's signature itself and refuses one from a key that did not claim the attempt.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayJobsBackend } from "../../functions/edge/jobs/gateway";
import type { Sigil, SigilError } from "../../sdk";
import { publicKeyFromJwk } from "../../shared/crypto";
import { fromBase64Url, toBase64Url } from "../../shared/encoding";
import { outputHash, type ResultBody, resultHash, signResult } from "../../shared/jobs";
import {
  type ConnectionLogEntry,
  MAX_REPORTED_LOG,
  summarizeConnectionLog,
} from "../../shared/jobs/egress";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";
import { resultBody } from "./support/result";
import { lockHashOf, type QueueTaker, startQueueTaker, type Taken } from "./support/taker";

describe.each(targetNames)("%s", (name) => {
  const prefix = testPrefix(`results-${name}`).replace(/:$/, "").replace(/:/g, "-");
  const queue = `jobs-${prefix}`;
  let node: Target;
  let edge: Target | undefined;
  let front: Target;
  let redis: Redis;
  let taker: QueueTaker;
  let admin: Sigil;
  let agent: Sigil;
  let w1: TestKey;
  let w2: TestKey;

  beforeAll(async () => {
    redis = connectRedis();
    node = await startTarget("node", { SIGIL_REDIS_PREFIX: prefix, SIGIL_SANDBOX_QUEUE: queue });
    if (name === "edge") {
      edge = await startTarget("edge", { SIGIL_GATEWAY_URL: node.url });
      // The edge's service key is a `gateway` key on Node (the only role that may call it).
      const jwks = (await (await fetch(`${edge.url}/.well-known/sigil/keys`)).json()) as {
        keys: { kid: string; role: string; x: string; status: string }[];
      };
      const svc = jwks.keys.find((k) => k.role === "service" && k.status === "active")!;
      await node.client(node.admin).keys.create({
        role: "gateway",
        subject: "edge",
        publicKey: toBase64Url(publicKeyFromJwk({ kty: "OKP", crv: "Ed25519", x: svc.x })),
      });
    }
    front = edge ?? node;
    admin = front.client(front.admin);
    agent = front.client(await registeredKey(admin, "agent", "results-agent"));
    w1 = await registeredKey(admin, "worker", "worker-1");
    w2 = await registeredKey(admin, "worker", "worker-2");
    await admin.policies.put("sandbox", "policy jobs {\n  allow: execute(sandbox)\n}");
    taker = await startQueueTaker(redis, prefix, queue);
  }, 120_000);

  afterAll(async () => {
    await taker?.close();
    await edge?.stop();
    await node?.stop();
    await dropPrefix(redis, `${prefix}:`);
    redis.disconnect();
  });

  /** Submits a job and takes it from the queue, holding its lock. */
  async function submitAndTake(): Promise<Taken> {
    const { jobId } = await agent.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
    return taker.take(jobId);
  }

  const client = (k: TestKey) => front.client(k);
  const started = (k: TestKey, t: Taken, lockHash = t.lockHash) =>
    client(k).jobs.reportResult(t.jobId, {
      type: "started",
      attempt: t.attempt,
      workerId: `w-${k.kid.slice(0, 6)}`,
      envelopeHash: t.envelopeHash,
      lockHash,
    });
  async function resultOf(k: TestKey, t: Taken, over: Partial<ResultBody> = {}) {
    const body = resultBody({
      jobId: t.jobId,
      envelopeHash: t.envelopeHash,
      stdoutHash: outputHash("done\n"),
      workerId: `w-${k.kid.slice(0, 6)}`,
      ...over,
    });
    return { signed: await signResult(body, k.signer), stdout: "done\n", stderr: "" };
  }
  const report = async (k: TestKey, t: Taken, over: Partial<ResultBody> = {}, lockHash?: string) =>
    client(k).jobs.reportResult(t.jobId, {
      type: "result",
      attempt: t.attempt,
      ...(await resultOf(k, t, over)),
      ...(lockHash ? { lockHash } : {}),
    });
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: SigilError) => [e.status, e.code],
    );

  /** security.event entries on the front's own audit chain for this job. */
  async function securityEvents(jobId: string) {
    const { events } = await admin.audit.list({ from: 0, limit: 1000 });
    return events
      .filter((e) => e.eventType === "security.event" && e.details.jobId === jobId)
      .map((e) => e.details as Record<string, unknown>);
  }

  it("a second worker key can neither claim, start nor finish the job; the claimant's result is stored", async () => {
    const t = await submitAndTake();
    // W2 never took the job: a guessed lock is no claim, and a result without a claim is refused.
    expect(await refusal(started(w2, t, lockHashOf(randomUUID())))).toEqual([403, "forbidden"]);
    expect(await refusal(report(w2, t))).toEqual([403, "forbidden"]);
    expect(await refusal(report(w2, t, {}, lockHashOf(randomUUID())))).toEqual([403, "forbidden"]);

    expect(await started(w1, t)).toMatchObject({ outcome: "started", proceed: true });
    // Even W1's real lock, read from Redis, gives W2 nothing: the attempt is W1's.
    expect(await refusal(started(w2, t))).toEqual([403, "forbidden"]);
    expect(await refusal(report(w2, t, {}, t.lockHash))).toEqual([403, "forbidden"]);

    const mine = await resultOf(w1, t);
    const send = (attempt: number) =>
      client(w1).jobs.reportResult(t.jobId, { type: "result", attempt, ...mine });
    expect(await send(t.attempt)).toMatchObject({ outcome: "stored", status: "succeeded" });
    // Its own stored result again, even under a later attempt (a lost acknowledgement, re-sent
    // after a restart): a duplicate, not a refusal.
    expect(await send(t.attempt + 1)).toMatchObject({ outcome: "duplicate" });
    const job = await agent.jobs.get(t.jobId);
    expect(job).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(job.result).toMatchObject({ kid: w1.kid, stdout: "done\n" });
    // And after it finished, another key's result is still a refusal, not a "conflict".
    expect(await refusal(report(w2, t))).toEqual([403, "forbidden"]);

    const events = await securityEvents(t.jobId);
    const refused = events.filter((d) => d.category === "job.result_refused");
    const claims = events.filter((d) => d.category === "job.claim_refused");
    expect(refused.length).toBe(4);
    expect(claims.length).toBe(2);
    for (const d of [...refused, ...claims])
      expect(d).toMatchObject({ severity: "high", workerKid: w2.kid, attempt: t.attempt });
    expect(claims.map((d) => d.reason)).toEqual(["no-lock", "claimed-by-other"]);
    expect(refused.at(-1)).toMatchObject({ claimedBy: w1.kid });
  });

  it("a result with egress: its log must hash to the signed digest; each refusal and the summary are audited", async () => {
    const t = await submitAndTake();
    expect(await started(w1, t)).toMatchObject({ outcome: "started", proceed: true });
    const log: ConnectionLogEntry[] = [
      {
        at: 0,
        kind: "connect",
        host: "api.test",
        port: 443,
        address: "203.0.113.7",
        allowed: true,
        bytesUp: 10,
        bytesDown: 20,
        durationMs: 3,
      },
      {
        at: 5,
        kind: "connect",
        host: "evil.test",
        port: 443,
        allowed: false,
        reason: "name and port not on the job's allow-list",
        bytesUp: 0,
        bytesDown: 0,
        durationMs: 0,
      },
    ];
    const egress = summarizeConnectionLog(log);
    const mine = await resultOf(w1, t, { egress });
    const send = (egressLog: unknown, r: object = mine) =>
      client(w1).jobs.reportResult(t.jobId, {
        type: "result",
        attempt: t.attempt,
        ...r,
        egressLog,
      });
    // Not the signed log: an entry dropped, an entry changed, or a log beside a result signing none.
    expect(await refusal(send(log.slice(0, 1)))).toEqual([400, "validation"]);
    expect(await refusal(send([log[0], { ...log[1], reason: "x" }]))).toEqual([400, "validation"]);
    expect(await refusal(send(log, await resultOf(w1, t)))).toEqual([400, "validation"]);
    // Hostile shapes: an unknown field, a lone surrogate, a negative count, too many entries.
    expect(await refusal(send([{ ...log[0], extra: 1 }]))).toEqual([400, "validation"]);
    expect(await refusal(send([{ ...log[1], host: "\ud800.test" }]))).toEqual([400, "validation"]);
    expect(await refusal(send([{ ...log[0], bytesUp: -1 }]))).toEqual([400, "validation"]);
    const many = await refusal(send(Array.from({ length: MAX_REPORTED_LOG + 1 }, () => log[1])));
    expect([400, 413]).toContain(many?.[0]);
    expect(await send(log)).toMatchObject({ outcome: "stored", status: "succeeded" });

    const { events } = await admin.audit.list({ from: 0, limit: 1000 });
    const ofJob = events.filter((e) => e.details.jobId === t.jobId);
    expect(ofJob.filter((e) => e.eventType === "egress.denied").map((e) => e.details)).toEqual([
      {
        jobId: t.jobId,
        kind: "connect",
        host: "evil.test",
        port: 443,
        reason: "name and port not on the job's allow-list",
        at: 5,
      },
    ]);
    expect(ofJob.find((e) => e.eventType === "egress.summary")?.details).toEqual({
      jobId: t.jobId,
      ...egress,
      logReported: true,
      deniedAudited: 1,
    });
    // The stored result is the signed one, summary included.
    expect((await agent.jobs.get(t.jobId)).result).toMatchObject({ signed: { egress } });
  });

  it("a worker that refused the envelope claims the attempt with its result, while it holds the lock", async () => {
    const t = await submitAndTake();
    const rejected = { status: "rejected" as const, runtime: null, exitCode: null };
    const reason = { reason: "unknown-key: service key is not known", stdoutHash: outputHash("") };
    const rej = async (k: TestKey, lockHash?: string) =>
      client(k).jobs.reportResult(t.jobId, {
        type: "result",
        attempt: t.attempt,
        signed: await signResult(
          resultBody({
            jobId: t.jobId,
            envelopeHash: t.envelopeHash,
            ...rejected,
            ...reason,
            workerId: "w",
          }),
          k.signer,
        ),
        stdout: "",
        stderr: "",
        ...(lockHash ? { lockHash } : {}),
      });
    // Rejecting someone else's job is refused too: it would end another agent's job.
    expect(await refusal(rej(w2))).toEqual([403, "forbidden"]);
    expect(await rej(w1, t.lockHash)).toMatchObject({ outcome: "stored", status: "rejected" });
    expect((await agent.jobs.get(t.jobId)).status).toBe("rejected");
  });

  if (name === "node")
    describe("the job gateway's finish", () => {
      let gateway: GatewayJobsBackend;
      beforeAll(async () => {
        const key = await registeredKey(node.client(node.admin), "gateway", "edge-2");
        gateway = new GatewayJobsBackend({ baseUrl: node.url, signer: key.signer });
      });

      it("refuses a forwarded result with a bad signature, a key that is not its kid, or no claim", async () => {
        const t = await submitAndTake();
        // The gateway verifies under the forwarded key, and only as far as its thumbprint is the
        // result's kid (an edge's worker keys live in the edge's registry, not Node's).
        const claim = {
          attempt: t.attempt,
          workerKid: w1.kid,
          workerPublicKey: toBase64Url(w1.publicKey),
        };
        const { signed, stdout, stderr } = await resultOf(w1, t);
        // A changed result with its hash recomputed: only the signature gives it away.
        const changed = { ...signed.result, exitCode: 7 };
        const forged = { ...signed, result: changed, resultHash: resultHash(changed) };
        const sig = fromBase64Url(signed.signature);
        sig[10] = (sig[10] ?? 0) ^ 1;
        const badSig = { ...signed, signature: toBase64Url(sig) };
        // Claimed through the gateway the way the edge does it, with the queue lock.
        expect(
          await gateway.claim(t.jobId, {
            attempt: t.attempt,
            workerKid: w1.kid,
            lockHash: t.lockHash,
          }),
        ).toMatchObject({ outcome: "claimed" });
        await expect(gateway.finish(t.jobId, { ...forged, stdout, stderr }, claim)).rejects.toThrow(
          /403/,
        );
        await expect(gateway.finish(t.jobId, { ...badSig, stdout, stderr }, claim)).rejects.toThrow(
          /403/,
        );
        await expect(
          gateway.finish(
            t.jobId,
            { ...signed, stdout, stderr },
            { ...claim, workerPublicKey: toBase64Url(w2.publicKey) },
          ),
        ).rejects.toThrow(/403/);
        // W2's own, validly signed result: it never claimed the attempt.
        const other = await resultOf(w2, t);
        await expect(
          gateway.finish(
            t.jobId,
            { ...other.signed, stdout, stderr },
            { attempt: t.attempt, workerKid: w2.kid, workerPublicKey: toBase64Url(w2.publicKey) },
          ),
        ).rejects.toThrow(/403/);
        expect((await gateway.get(t.jobId))?.status).toBe("queued");
        // The real one is stored.
        expect(await gateway.finish(t.jobId, { ...signed, stdout, stderr }, claim)).toMatchObject({
          outcome: "stored",
        });

        const events = await securityEvents(t.jobId);
        expect(events.filter((d) => d.category === "job.result_refused")).toHaveLength(4);
        for (const d of events) expect(d).toMatchObject({ severity: "high", via: "gateway" });
      });
    });
});
