// A sandbox job end to end THROUGH THE EDGE: agent → edge (workerd) /v1/jobs → the Node job gateway
// (signed with the edge's service key, role `gateway` on Node) → BullMQ → a real worker consumer
// (product sandbox driver, Docker runc) that trusts the edge's service key → started and result
// reports back to the EDGE → forwarded to Node → wait through the edge.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil } from "../../sdk";
import { loadConfig } from "../../shared/config";
import { signRequest } from "../../shared/httpsig";
import { outputHash } from "../../shared/jobs/result";
import { type EdgeStack, startEdgeStack } from "./support/edge-stack";
import { runLowRisk, submitLowRisk } from "./support/harness";
import { expectSignedBy } from "./support/result";

let stack: EdgeStack;
let node: EdgeStack["node"];
let edge: EdgeStack["edge"];
let agent: EdgeStack["agent"];
let worker: EdgeStack["worker"];
let agentClient: Sigil;
let WORKER_ID: string;
let edgeServiceKid: string;
let edgeAdminClient: Sigil;
let workerConfig: EdgeStack["workerConfig"];
const MiB = 1024 * 1024;

beforeAll(async () => {
  stack = await startEdgeStack("edge-e2e", "policy jobs {\n  allow: execute(sandbox)\n}");
  ({ node, edge, agent, worker } = stack);
  WORKER_ID = stack.workerId;
  edgeServiceKid = stack.edgeServiceKid;
  edgeAdminClient = stack.admin;
  workerConfig = stack.workerConfig;
  agentClient = stack.edgeClient(agent);
}, 120_000);

afterAll(async () => stack?.stop());

describe("a sandbox job through the edge", () => {
  let jobId: string;

  it("runs on runc and returns a result signed by the worker", async () => {
    const {
      accepted: acc,
      job,
      result: r,
    } = await runLowRisk(agentClient, ["sh", "-c", "echo hello from the edge; echo note >&2"]);
    expect(acc).toMatchObject({ tier: "docker", status: "queued", riskScore: 0 });
    jobId = acc.jobId;
    expect(job.status).toBe("succeeded");
    expect(r).toMatchObject({
      status: "succeeded",
      exitCode: 0,
      stdout: "hello from the edge\n",
      stderr: "note\n",
      truncated: false,
      workerId: WORKER_ID,
    });
    expect(r.signed.runtime).toBe("runc");
    expect(r.signed.tier).toBe("docker");
    expect(r.kid).toBe(worker.kid);
    await expectSignedBy(r, jobId, worker.publicKey);
    // The record lives on Node (an admin there sees it), reached by the edge over the gateway.
    const onNode = await node.client(node.admin).jobs.get(jobId);
    expect(onNode).toMatchObject({ jobId, status: "succeeded", tier: "docker" });
    expect(onNode.result?.resultHash).toBe(r.resultHash);
    // The edge audited the job's life on its own chain.
    const { events } = await edgeAdminClient.audit.list({ from: 0, limit: 1000 });
    const mine = events.filter((e) => e.details.jobId === jobId);
    expect(mine.map((e) => e.eventType)).toEqual(["job.submitted", "job.started", "job.completed"]);
    expect(mine[0]!.details).toMatchObject({ serviceKid: edgeServiceKid, tier: "docker" });
  });

  it("a long wait (90 s) on a finished job answers 200 through the edge", async () => {
    expect(jobId).toBeDefined();
    const job = await agentClient.jobs.wait(jobId, 90_000);
    expect(job).toMatchObject({ jobId, status: "succeeded" });
    // The same as a plain signed request, so the status code itself is what is checked.
    const url = `${edge.url}/v1/jobs/${jobId}/wait?timeoutMs=90000`;
    const sig = await signRequest({ method: "GET", url, headers: {} }, agent.signer, {
      keyid: agent.kid,
    });
    const res = await fetch(url, { headers: { ...sig } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe("succeeded");
  });

  it("streams queued, started, output and finished as server-sent events through the edge", async () => {
    const acc = await submitLowRisk(agentClient, ["echo", "streamed"]);
    const seen: { event: string; data: unknown }[] = [];
    for await (const e of agentClient.jobs.events(acc.jobId, { timeoutMs: 30_000 }))
      seen.push({ event: e.event, data: e.data });
    expect(seen.map((e) => e.event)).toEqual(["queued", "started", "output", "finished"]);
    expect(seen[2]!.data).toEqual({ stream: "stdout", data: "streamed\n" });
    expect(seen[3]!.data).toMatchObject({ status: "succeeded", exitCode: 0 });
  });

  it("a result report larger than the general body limit is forwarded to Node", async () => {
    // Each stream is capped at output_bytes (1 MiB by default): the job writes more than that to
    // both, so the worker's report (and the edge's forward of it) carries about 2 MiB.
    const cap = workerConfig.sandbox.output_bytes;
    expect(cap).toBe(MiB);
    const n = cap + 64 * 1024;
    const {
      accepted: acc,
      job,
      result: r,
    } = await runLowRisk(
      agentClient,
      ["sh", "-c", `head -c ${n} /dev/zero | tr '\\0' o; head -c ${n} /dev/zero | tr '\\0' e >&2`],
      30_000,
      { timeoutMs: 60_000 },
    );
    expect(job.status).toBe("succeeded");
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBe(cap);
    expect(r.stderr.length).toBe(cap);
    expect(r.stdout.length + r.stderr.length).toBeGreaterThan(
      loadConfig({ env: {} }).server.body_limit_bytes,
    );
    expect(r.signed.stdoutHash).toBe(outputHash("o".repeat(cap)));
    await expectSignedBy(r, acc.jobId, worker.publicKey);
  });
});
