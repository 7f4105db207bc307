// A quarantined worker pauses (docs/incidents.md "Quarantine"): on the deployment `npm start` brings
// up (real Redis, a real worker, real Docker), once the API refuses the worker's start report with
// 403 `quarantined` the worker takes no more jobs, so a job submitted meanwhile stays queued; its
// probe sees the lift and the worker takes jobs again, and the queued job runs to completion.
import { afterAll, beforeAll, expect, it } from "vitest";
import { Sigil } from "../../sdk";
import { devAdminClient } from "../../sdk/node";
import { type Stack, startStack } from "../support/stack";
import { registeredKey } from "../support/targets";

let stack: Stack;
let admin: Sigil;

beforeAll(async () => {
  stack = await startStack("qpause", { SIGIL_WORKER_QUARANTINE_PROBE_MS: "300" });
  admin = await devAdminClient({ baseUrl: stack.base, dataDir: stack.dataDir });
  await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}\n");
}, 180_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

async function until(what: string, f: () => Promise<boolean> | boolean, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${stack.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

it("a quarantined worker takes no jobs until the quarantine is lifted, then runs the queued one", async () => {
  const key = await registeredKey(admin, "agent", "qpause-agent", { trust: 1 });
  const agent = new Sigil({ baseUrl: stack.base, keyId: key.kid, signer: key.signer, retries: 0 });
  // startStack names its worker `<name>-<port>`.
  const workerId = `qpause-${new URL(stack.base).port}`;
  const { quarantine } = await admin.quarantine.place({ workerId, reason: "forged result" });
  // The worker learns it is quarantined from the refusal of its next start report.
  await agent.jobs.submit({ image: "sigil/busybox:1", command: ["true"] });
  await until("the worker to pause", () =>
    stack.output().includes("this worker is quarantined: paused"),
  );
  const second = await agent.jobs.submit({ image: "sigil/busybox:1", command: ["echo", "later"] });
  // Long enough for an unpaused worker to have taken and finished it several times over.
  await new Promise((r) => setTimeout(r, 5000));
  expect((await admin.jobs.get(second.jobId)).status).toBe("queued");

  await admin.quarantine.lift(quarantine.id, "worker rebuilt");
  await until("the worker to resume", () =>
    stack.output().includes("quarantine lifted: taking jobs again"),
  );
  const done = await admin.jobs.wait(second.jobId, 60_000);
  expect(done.status).toBe("succeeded");
}, 240_000);
