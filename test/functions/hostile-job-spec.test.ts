// POST /v1/jobs refuses at submission (400, naming the field) every value the worker would refuse
// later, on Node and on the edge alike (issue 15, item 14): no 202 followed by `error`. The edge
// validates before it reaches its job gateway, so a gateway that answers nothing is enough here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SigilError } from "../../sdk";
import {
  registeredKey,
  startTarget,
  type Target,
  type TestKey,
  targetNames,
} from "../support/targets";

const cases: [string, Record<string, unknown>, string][] = [
  ["memory 16 MiB", { limits: { memoryMb: 16 } }, "limits.memoryMb"],
  ["memory 31 MiB", { limits: { memoryMb: 31 } }, "limits.memoryMb"],
  ["cpus 1e-9", { limits: { cpus: 1e-9 } }, "limits.cpus"],
  ["pids above the cap", { limits: { pids: 129 } }, "limits.pids"],
  ["a file that is also a directory", { files: { a: "1", "a/b": "2" } }, "files"],
  ["a file name no tar header holds", { files: { ["x".repeat(101)]: "" } }, "files"],
];

describe.each(targetNames)("%s", (name) => {
  let t: Target;
  let agent: TestKey;
  beforeAll(async () => {
    t = await startTarget(name, name === "edge" ? { SIGIL_GATEWAY_URL: "http://127.0.0.1:9" } : {});
    agent = await registeredKey(t.client(t.admin), "agent", "spec-agent");
  }, 90_000);
  afterAll(async () => t?.stop());

  for (const [what, extra, path] of cases)
    it(`${what} is 400 at submission`, async () => {
      const err = (await t
        .client(agent)
        .jobs.submit({ image: "sigil/busybox:1", command: ["true"], ...extra })
        .catch((e: unknown) => e)) as SigilError;
      expect([err.status, err.code]).toEqual([400, "validation"]);
      const paths = (err.errors ?? []).map((e) => String((e as { path: unknown }).path));
      expect(
        paths.some((p) => p === path || p.startsWith(`${path}.`)),
        paths.join(),
      ).toBe(true);
    });

  it("the smallest limits a sandbox runs pass validation (the policy decides next)", async () => {
    const err = (await t
      .client(agent)
      .jobs.submit({
        image: "sigil/busybox:1",
        command: ["true"],
        limits: { memoryMb: 32, cpus: 0.1, pids: 8, outputBytes: 1024 },
      })
      .catch((e: unknown) => e)) as SigilError;
    // Validation passed. On Node no policy allows sandbox jobs here: default deny. The edge asks
    // its (dead) gateway for the submitter's unfinished jobs before any policy work (the queued
    // cap, docs/governance.md "Quotas"), which fails closed.
    expect([err.status, err.code]).toEqual(
      name === "edge" ? [503, "unavailable"] : [403, "policy-denied"],
    );
  });
});
