// The container really runs under the runtime its tier names, with the hardening dockerd applied
// (read back from `docker inspect` and from /proc inside the running job).
import { release } from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { runscHostPids } from "../../worker/sandbox";
import { BUSYBOX, closeSandbox, docker, jobId, newSandbox, TIERS } from "./support";

const sb = newSandbox("runtime");
// dmesg needs the syslog syscall, which Docker's seccomp profile only allows with CAP_SYSLOG in
// the bounding set. Only ever granted on Tier 2: under runc it would expose the host's log.
const syslogSb = newSandbox("runtime-syslog", { capAdd: ["SYSLOG"] });
afterAll(() => Promise.all([closeSandbox(sb), closeSandbox(syslogSb)]));

async function findRunning(id: string) {
  for (let i = 0; i < 200; i++) {
    const [c] = await docker.listContainers({ filters: { label: [`sigil.job=${id}`] } });
    if (c) return docker.getContainer(c.Id).inspect();
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`container for ${id} never appeared`);
}

describe.concurrent.each(TIERS)("tier %s", (tier) => {
  it("runs under its runtime with the hardening applied", async () => {
    const id = jobId(`rt-${tier}`);
    // No pool here, so the container is created for this job and carries its label.
    const running = sb.runJob({
      jobId: id,
      image: BUSYBOX,
      tier,
      language: "sh",
      code: [
        "sleep 2",
        "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status",
        "id -u; id -g",
        "dmesg 2>&1 | head -n 3",
        "cat /proc/version",
      ].join("\n"),
    });
    const info = await findRunning(id);
    const r = await running;
    expect(r.status).toBe("succeeded");
    expect(r.containerId).toBe(info.Id);

    const h = info.HostConfig;
    expect(h.Runtime).toBe(tier === "gvisor" ? "runsc" : "runc");
    expect(h.NetworkMode).toBe("none");
    expect(h.Memory).toBe(512 * 1024 * 1024);
    expect(h.MemorySwap).toBe(512 * 1024 * 1024);
    expect(h.NanoCpus).toBe(500_000_000);
    expect(h.PidsLimit).toBe(tier === "gvisor" ? runscHostPids(128) : 128);
    expect(h.ReadonlyRootfs).toBe(true);
    expect(h.SecurityOpt).toEqual(["no-new-privileges"]);
    expect(h.CapDrop).toEqual(["ALL"]);
    expect(h.Privileged).toBe(false);
    expect(Object.keys(h.Tmpfs ?? {}).sort()).toEqual(["/tmp", "/work"]);
    expect(info.Config.User).toBe("1000:1000");
    expect(info.Config.Labels).toMatchObject({
      "sigil.job": id,
      "sigil.tier": tier,
      "sigil.worker": sb.config.workerId,
    });

    // Inside: no capabilities, seccomp filter mode (2), uid/gid 1000.
    expect(r.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(r.stdout).toMatch(/CapBnd:\s+0000000000000000/);
    expect(r.stdout).toMatch(/Seccomp:\s+2/);
    expect(r.stdout).toContain("1000\n1000\n");
    // Seccomp (and no CAP_SYSLOG) block the kernel log on both tiers.
    expect(r.stdout).toContain("klogctl: Operation not permitted");
    if (tier === "gvisor") {
      // gVisor's own kernel answers, not the host's.
      expect(r.stdout).not.toContain(release());
    } else {
      expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
      expect(r.stdout).toContain(release());
    }
  });
});

describe("gVisor is really there", () => {
  it("dmesg inside a Tier 2 container shows the gVisor kernel", async () => {
    const r = await syslogSb.runJob({
      jobId: jobId("dmesg"),
      image: BUSYBOX,
      tier: "gvisor",
      command: ["dmesg"],
    });
    expect(r.status).toBe("succeeded");
    expect(r.runtime).toBe("runsc");
    expect(r.stdout).toContain("Starting gVisor");
  });
});
