// A job that waits for approval THROUGH THE EDGE (docs/governance.md "Approvals"): the edge's
// policy requires a supervisor's approval for sandbox jobs; the edge holds the signed envelope on
// Node through the job gateway (`hold`), its Durable Object holds the approval, and the edge's
// decision route releases (`release`) or rejects (`reject`) the job through the gateway. Setup as
// in edge-e2e.test.ts: a real worker consumer that trusts the edge's service key.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sigil, SigilError } from "../../sdk";
import { registeredKey } from "../support/targets";
import { type EdgeStack, startEdgeStack } from "./support/edge-stack";
import { type ApiJobResult, submitLowRisk } from "./support/harness";
import { expectSignedBy } from "./support/result";

let stack: EdgeStack;
let agent: EdgeStack["agent"];
let worker: EdgeStack["worker"];
let agentClient: Sigil;
let boss: Sigil;
let sameSubject: Sigil;

beforeAll(async () => {
  stack = await startEdgeStack(
    "edge-apj",
    "policy jobs {\n  allow: execute(sandbox)\n  require: supervisor_approval for execute(sandbox)\n}",
  );
  ({ agent, worker } = stack);
  agentClient = stack.edgeClient(agent);
  boss = stack.edgeClient(
    await registeredKey(stack.admin, "agent", "boss", { groups: ["supervisor"] }),
  );
  sameSubject = stack.edgeClient(
    await registeredKey(stack.admin, "agent", "edge-agent", { groups: ["supervisor"] }),
  );
}, 120_000);

afterAll(async () => stack?.stop());

describe("a job that requires approval, through the edge", () => {
  it("202 awaiting_approval → a supervisor approves → runs once → signed result", async () => {
    const acc = await submitLowRisk(agentClient, ["echo", "edge-approved"]);
    expect(acc).toMatchObject({ status: "awaiting_approval", approver: "supervisor" });
    expect((await agentClient.jobs.get(acc.jobId)).status).toBe("awaiting_approval");
    // Self-approval by another key of the requester's subject: 403.
    const self = await sameSubject.approvals
      .decide(acc.approvalId!, { decision: "approve" })
      .then(() => undefined)
      .catch((e: SigilError) => e);
    expect(self?.status).toBe(403);
    await boss.approvals.decide(acc.approvalId!, { decision: "approve", reason: "ok" });
    const job = await agentClient.jobs.wait(acc.jobId, 60_000);
    expect(job.status).toBe("succeeded");
    expect(job.result?.stdout).toBe("edge-approved\n");
    expect(job.attempts).toBe(1);
    const r = job.result as ApiJobResult;
    await expectSignedBy(r, acc.jobId, worker.publicKey);
    expect((await boss.approvals.get(acc.approvalId!)).status).toBe("redeemed");
  }, 90_000);

  it("denied → rejected", async () => {
    const acc = await submitLowRisk(agentClient, ["true"]);
    await boss.approvals.decide(acc.approvalId!, { decision: "deny", reason: "no" });
    const job = await agentClient.jobs.wait(acc.jobId, 10_000);
    expect(job.status).toBe("rejected");
    expect(job.reason).toMatch(/denied by boss/);
  }, 30_000);
});
