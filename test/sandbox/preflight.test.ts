// Preflight against the real dockerd, and against a missing image, runtime and daemon.
import Docker from "dockerode";
import { describe, expect, it } from "vitest";
import { configSchema } from "../../shared/config/schema";
import { createSandboxDriver } from "../../worker/jobs/sandbox-driver";
import { preflight } from "../../worker/sandbox";
import { BUSYBOX, docker, PYTHON } from "./support";

describe("preflight", () => {
  it("passes on this machine (dockerd, runc, runsc, seccomp, images)", async () => {
    const r = await preflight({ docker });
    expect(r.checks.map((c) => c.name).sort()).toEqual(
      [
        "docker",
        "image:sigil/busybox:1",
        "image:sigil/python:1",
        "runtime:runc",
        "runtime:runsc",
        "seccomp",
        // A probe container under runsc shows the seccomp filter in effect.
        "seccomp:runsc",
      ].sort(),
    );
    expect(r.checks.find((c) => c.name === "seccomp:runsc")?.message).toContain("Seccomp: 2");
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it("fails a missing image and an unregistered runtime with a fix", async () => {
    const r = await preflight({
      docker,
      images: [BUSYBOX, "sigil/absent:0"],
      runtimes: ["runc", "runsc-nope"],
    });
    expect(r.ok).toBe(false);
    const byName = Object.fromEntries(r.checks.map((c) => [c.name, c]));
    expect(byName["image:sigil/busybox:1"]?.ok).toBe(true);
    expect(byName["image:sigil/absent:0"]?.ok).toBe(false);
    expect(byName["image:sigil/absent:0"]?.message).toContain("infra/images.sh");
    expect(byName["runtime:runsc-nope"]?.ok).toBe(false);
    expect(byName["runtime:runsc-nope"]?.message).toContain("infra/docker.sh");
  });

  it("fails closed when dockerd is unreachable", async () => {
    const r = await preflight({
      docker: new Docker({ socketPath: "/nonexistent/docker.sock" }),
      images: [PYTHON],
    });
    expect(r.ok).toBe(false);
    expect(r.checks.every((c) => !c.ok)).toBe(true);
    expect(r.checks.find((c) => c.name === "docker")?.message).toContain("unreachable");
  });

  // The worker's own preflight: with egress on, the gVisor runtime with its network stack must be
  // registered and start a container through its wrapper (docs/sandbox.md "Egress").
  async function workerProblems(network: Record<string, unknown>): Promise<string[]> {
    const d = createSandboxDriver(
      `preflight-${process.pid}`,
      configSchema.parse({ sandbox: { warm_pool_size: 0 }, network }),
    );
    try {
      return await d.preflight();
    } finally {
      await d.driver.shutdown();
    }
  }

  it("a worker with egress on checks its network runtime, and starts a probe through it", async () => {
    expect(await workerProblems({ egress: true, resolvers: ["127.0.0.1"] })).toEqual([]);
    const absent = await workerProblems({
      egress: true,
      resolvers: ["127.0.0.1"],
      gvisor_network_runtime: "runsc-absent",
    });
    expect(absent.find((p) => p.startsWith("runtime:runsc-absent:"))).toContain("infra/docker.sh");
    expect(absent.find((p) => p.startsWith("seccomp:runsc-absent:"))).toContain("not checked");
    // Egress off: the network runtime is not needed, so not checked.
    expect(await workerProblems({ gvisor_network_runtime: "runsc-absent" })).toEqual([]);
  }, 120_000);
});
