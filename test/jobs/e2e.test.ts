// The whole job path over HTTP, through the Node app as composeNode and createApp build it: signed
// submit → policy → envelope → BullMQ → worker consumer → real Docker (runc) / gVisor (runsc) →
// signed result → verified report → wait / SSE.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queuePrefix } from "../../platform/node/queue";
import type { Sigil, SigilError } from "../../sdk";
import { type Signer, verifyEd25519 } from "../../shared/crypto";
import { envelopeChecks } from "../../shared/jobs";
import { envelopeHash, signEnvelope } from "../../shared/jobs/envelope";
import { type ResultBody, signResult } from "../../shared/jobs/result";
import { type Consumer, startConsumer } from "../../worker/jobs/consumer";
import type { SandboxDriver } from "../../worker/jobs/driver";
import { Outbox } from "../../worker/jobs/outbox";
import { apiReporter } from "../../worker/jobs/reporter";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import {
  type Harness,
  lowRisk,
  newSigner,
  quiet,
  runLowRisk,
  startHarness,
  submitLowRisk,
} from "./support/harness";
import { expectSignedBy } from "./support/result";
import { observeJobRuntimes, type RuntimeObserver } from "./support/runtime-observer";

let h: Harness;
let agent: Signer;
let workerKey: Signer;
let agentClient: Sigil;
let workerClient: Sigil;
let driver: SandboxDriver;
let observer: RuntimeObserver;
let consumer: Consumer;
let dir: string;

beforeAll(async () => {
  h = await startHarness("e2e");
  // An admin trusts this agent's code (trust 1): its low-risk jobs run on runc.
  agent = await h.addKey("agent", "agent-1", undefined, { trust: 1 });
  workerKey = await h.addKey("worker", "worker-1");
  agentClient = h.client(agent);
  workerClient = h.client(workerKey);
  dir = await mkdtemp(join(tmpdir(), "sigil-jobs-"));
  const outbox = new Outbox(join(dir, "outbox"));
  await outbox.init();
  // The product's driver (hardened containers, warm pool), observed through Docker itself.
  observer = await observeJobRuntimes();
  const sandbox = createSandboxDriver("e2e-worker", h.config);
  await sandbox.warm();
  driver = sandbox.driver;
  consumer = startConsumer({
    connection: h.redis.duplicate({ maxRetriesPerRequest: null }),
    queueName: h.config.sandbox.queue,
    queuePrefix: queuePrefix(h.prefix),
    concurrency: 2,
    workerId: "e2e-worker",
    signer: workerKey,
    driver,
    reporter: apiReporter(workerClient),
    outbox,
    envelope: envelopeChecks(
      h.config,
      async (kid) => (kid === h.service.kid ? h.service.publicKey : undefined),
      verifyEd25519,
    ),
    log: quiet,
  });
  await consumer.worker.waitUntilReady();
});

afterAll(async () => {
  await consumer?.close(5000);
  await driver?.shutdown();
  observer?.close();
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("submit → signed result", () => {
  it("low risk runs on runc and returns a result signed by the worker", async () => {
    const {
      accepted: acc,
      job,
      result: r,
    } = await runLowRisk(agentClient, ["sh", "-c", "echo hello; echo oops >&2; exit 3"]);
    expect(acc).toMatchObject({ tier: "docker", status: "queued", riskScore: 0 });
    expect(job.status).toBe("failed");
    expect(await observer.runtimeOf(acc.jobId)).toBe("runc");
    expect(r).toMatchObject({
      exitCode: 3,
      stdout: "hello\n",
      stderr: "oops\n",
      workerId: "e2e-worker",
    });
    expect(r.kid).toBe(workerKey.kid);
    expect(r.signed.runtime).toBe("runc");
    // Anyone with the worker's public key can check the result: signature, hash and outputs.
    await expectSignedBy(r, acc.jobId, workerKey.publicKey);
    const types = h.audits.filter((a) => a.details.jobId === acc.jobId).map((a) => a.eventType);
    expect(types).toEqual(["job.submitted", "job.started", "job.completed"]);
  });

  it("a key no admin trusted runs on gVisor (runsc), whatever it declares", async () => {
    const untrusted = h.client(await h.addKey("agent", "agent-untrusted"));
    const acc = await untrusted.jobs.submit({
      image: "sigil/python:1",
      code: "import sys\nprint(sys.stdin.read().upper())",
      language: "python",
      stdin: "abc",
      risk: lowRisk,
    });
    expect(acc).toMatchObject({ tier: "gvisor", riskScore: 0.3 });
    const job = await untrusted.jobs.wait(acc.jobId, 60_000);
    expect(job.status).toBe("succeeded");
    expect(job.result?.stdout).toBe("ABC\n");
    expect(await observer.runtimeOf(acc.jobId)).toBe("runsc");
    expect((job.result as unknown as { signed: ResultBody }).signed.runtime).toBe("runsc");
  });

  it("streams queued, started, output and finished as server-sent events", async () => {
    const acc = await submitLowRisk(agentClient, ["echo", "streamed"]);
    const seen: { event: string; data: unknown }[] = [];
    for await (const e of agentClient.jobs.events(acc.jobId))
      seen.push({ event: e.event, data: e.data });
    expect(seen.map((e) => e.event)).toEqual(["queued", "started", "output", "finished"]);
    expect(seen[2]!.data).toEqual({ stream: "stdout", data: "streamed\n" });
    expect(seen[3]!.data).toMatchObject({ status: "succeeded", exitCode: 0 });
  });

  it("another agent cannot see the job (404), a worker cannot read jobs (403)", async () => {
    const acc = await submitLowRisk(agentClient, ["true"]);
    const other = h.client(await h.addKey("agent", "agent-2"));
    await expect(other.jobs.get(acc.jobId)).rejects.toMatchObject({ status: 404 });
    await expect(workerClient.jobs.get(acc.jobId)).rejects.toMatchObject({
      status: 403,
      code: "forbidden",
    });
    await agentClient.jobs.wait(acc.jobId, 30_000);
  });
});

describe("refusals", () => {
  it("a wait longer than 120 s is 400 validation, naming timeoutMs", async () => {
    const err = (await agentClient.jobs
      .wait("00000000-0000-7000-8000-000000000000", 120_001)
      .catch((e: unknown) => e)) as SigilError;
    expect([err.status, err.code]).toEqual([400, "validation"]);
    expect(err.errors).toEqual([expect.objectContaining({ path: "timeoutMs" })]);
  });

  it("a policy deny is 403 policy-denied, audited, nothing queued", async () => {
    h.policy.next = {
      decision: "deny",
      enforced: true,
      reason: "no sandboxes today",
      decisionId: "d-deny",
    };
    try {
      const err = (await agentClient.jobs
        .submit({ image: "sigil/busybox:1", command: ["true"] })
        .catch((e) => e)) as SigilError;
      expect(err.status).toBe(403);
      expect(err.code).toBe("policy-denied");
      const req = h.policy.seen.at(-1)!;
      expect(req).toMatchObject({ action: "execute", resource: "sandbox" });
      // The job's attributes, and the caller as the server authenticated it.
      expect(req.context).toMatchObject({
        image: "sigil/busybox:1",
        tier: "docker",
        network: false,
        agent: { kid: agent.kid, subject: "agent-1", role: "agent", groups: [], trust: 1 },
        request: { time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) },
      });
      const denied = h.audits.find((a) => a.eventType === "job.denied")!;
      expect(denied.details).toMatchObject({ decisionId: "d-deny" });
      expect(await h.backend.get(String(denied.details.jobId))).toBeNull();
    } finally {
      h.policy.next = undefined;
    }
  });

  it("a policy condition raises the tier; an unknown condition denies", async () => {
    h.policy.next = {
      decision: "allow_with_conditions",
      conditions: [{ name: "sandbox_tier", value: "gvisor" }],
      decisionId: "d-raise",
    };
    try {
      const acc = await submitLowRisk(agentClient, ["true"]);
      expect(acc.tier).toBe("gvisor");
      expect((await agentClient.jobs.wait(acc.jobId, 60_000)).status).toBe("succeeded");
      expect(await observer.runtimeOf(acc.jobId)).toBe("runsc");
      h.policy.next = {
        decision: "allow_with_conditions",
        conditions: [{ name: "mfa" }],
        decisionId: "d-x",
      };
      await expect(
        agentClient.jobs.submit({ image: "sigil/busybox:1", command: ["true"] }),
      ).rejects.toMatchObject({ status: 403, code: "policy-denied" });
    } finally {
      h.policy.next = undefined;
    }
  });

  it("network access is refused with 400 (no egress proxy yet), image off the allow-list too", async () => {
    await expect(
      agentClient.jobs.submit({
        image: "sigil/busybox:1",
        command: ["true"],
        network: { allow: [{ domain: "example.com", ports: [443] }] },
      }),
    ).rejects.toMatchObject({ status: 400, code: "validation" });
    await expect(
      agentClient.jobs.submit({ image: "alpine:3", command: ["true"] }),
    ).rejects.toMatchObject({ status: 400, code: "validation" });
    await expect(
      agentClient.jobs.submit({
        image: "sigil/busybox:1",
        command: ["true"],
        limits: { memoryMb: 4096 },
      }),
    ).rejects.toMatchObject({ status: 400 });
  });
});

describe("envelopes the service did not sign", () => {
  it("a forged envelope put straight into BullMQ is rejected, nothing runs, it is audited", async () => {
    const forger = await newSigner();
    const jobId = "0190f0f0-0000-7000-8000-00000000f0f0";
    const now = Date.now();
    const forged = await signEnvelope(
      {
        type: "sigil.job-envelope.v1",
        jobId,
        submitter: { kid: "mallory", subject: null },
        spec: {
          image: "sigil/busybox:1",
          command: ["sh", "-c", "echo pwned"],
          timeoutMs: 1000,
          limits: { memoryMb: 64, cpus: 0.5, pids: 32, outputBytes: 1024 },
          network: { allow: [] },
        },
        image: "sigil/busybox:1",
        tier: "docker",
        risk: null,
        riskScore: null,
        riskLevel: null,
        policyMinimumTier: null,
        policyDecisionId: "forged",
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 60_000).toISOString(),
      },
      forger,
    );
    const containersBefore = observer.created.length;
    await h.backend.queue.add("run", { envelope: forged }, { jobId });
    const deadline = Date.now() + 20_000;
    let audit: (typeof h.audits)[number] | undefined;
    while (!audit && Date.now() < deadline) {
      audit = h.audits.find((a) => a.eventType === "job.rejected" && a.details.jobId === jobId);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(audit?.details).toMatchObject({
      status: "rejected",
      unknownJob: true,
      envelopeHash: envelopeHash(forged.envelope),
    });
    expect(String(audit?.details.reason)).toMatch(/^unknown-key/);
    expect(observer.created.length).toBe(containersBefore);
  });

  it("a tampered envelope of a real job ends `rejected`, nothing runs", async () => {
    await consumer.worker.pause();
    try {
      const acc = await agentClient.jobs.submit({
        image: "sigil/busybox:1",
        command: ["echo", "ok"],
        risk: { ...lowRisk, dataSensitivity: 1 },
      });
      expect(acc.tier).toBe("gvisor");
      const job = await h.backend.queue.getJob(acc.jobId);
      const data = structuredClone(job!.data);
      // Redis is not trusted: downgrade the tier and swap the command behind the service's back.
      data.envelope.envelope.tier = "docker";
      data.envelope.envelope.spec.command = ["sh", "-c", "echo pwned"];
      await job!.updateData(data);
      const containersBefore = observer.created.length;
      consumer.worker.resume();
      const done = await agentClient.jobs.wait(acc.jobId, 30_000);
      expect(done.status).toBe("rejected");
      expect(String(done.reason)).toMatch(/^bad-signature/);
      expect(observer.created.length).toBe(containersBefore);
      expect(
        h.audits.some((a) => a.eventType === "job.rejected" && a.details.jobId === acc.jobId),
      ).toBe(true);
    } finally {
      consumer.worker.resume();
    }
  });
});

describe("result reports", () => {
  it("the same signed result again is idempotent; a different one is 409; a forged one is 400", async () => {
    const { accepted: acc, result: r } = await runLowRisk(agentClient, ["echo", "x"]);
    const signed = {
      result: r.signed,
      resultHash: r.resultHash,
      kid: r.kid,
      signature: r.signature,
    };
    const again = await workerClient.jobs.reportResult(acc.jobId, {
      type: "result",
      attempt: 1,
      signed,
      stdout: r.stdout,
      stderr: r.stderr,
    });
    expect(again).toMatchObject({ outcome: "duplicate" });

    const other = await signResult({ ...r.signed, stdoutHash: r.signed.stderrHash }, workerKey);
    await expect(
      workerClient.jobs.reportResult(acc.jobId, {
        type: "result",
        attempt: 1,
        signed: other,
        stdout: "",
        stderr: "",
      }),
    ).rejects.toMatchObject({ status: 409, code: "conflict" });

    const forged = { ...signed, result: { ...r.signed, exitCode: 7 } };
    await expect(
      workerClient.jobs.reportResult(acc.jobId, {
        type: "result",
        attempt: 1,
        signed: forged,
        stdout: r.stdout,
        stderr: r.stderr,
      }),
    ).rejects.toMatchObject({ status: 400 });
    // An agent may not report results.
    await expect(
      agentClient.jobs.reportResult(acc.jobId, {
        type: "result",
        attempt: 1,
        signed,
        stdout: r.stdout,
        stderr: r.stderr,
      }),
    ).rejects.toMatchObject({ status: 403 });
  });
});
