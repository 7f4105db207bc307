// The smallest limits the API accepts (shared/jobs/bounds.ts) really run, on both runtimes and in
// both images: a job at the minimum ends `succeeded`, never `error` (issue 15, item 14).
import { afterAll, describe, expect, it } from "vitest";
import { LIMIT_BOUNDS } from "../../shared/jobs";
import { BUSYBOX, closeSandbox, jobId, newSandbox, PYTHON, TIERS } from "./support";

const sb = newSandbox("limits");
afterAll(() => closeSandbox(sb));

const minimum = {
  memoryMb: LIMIT_BOUNDS.memoryMb.min,
  cpus: LIMIT_BOUNDS.cpus.min,
  pids: LIMIT_BOUNDS.pids.min,
  outputBytes: LIMIT_BOUNDS.outputBytes.min,
};

describe.each(TIERS)("tier %s at the minimum limits", (tier) => {
  it("busybox and python run", async () => {
    const bb = await sb.runJob({
      jobId: jobId(`min-bb-${tier}`),
      image: BUSYBOX,
      tier,
      command: ["echo", "ok"],
      limits: minimum,
      timeoutMs: 60_000,
    });
    expect([bb.status, bb.stdout, bb.error]).toEqual(["succeeded", "ok\n", undefined]);
    const py = await sb.runJob({
      jobId: jobId(`min-py-${tier}`),
      image: PYTHON,
      tier,
      code: "print('ok')",
      language: "python",
      limits: minimum,
      timeoutMs: 60_000,
    });
    expect([py.status, py.stdout, py.error]).toEqual(["succeeded", "ok\n", undefined]);
  }, 180_000);
});
