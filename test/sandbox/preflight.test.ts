// Preflight against the real dockerd, and against a missing image, runtime and daemon.
import Docker from "dockerode";
import { describe, expect, it } from "vitest";
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
});
