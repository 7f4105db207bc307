// The runsc-net wrapper (infra/runsc-netstack.sh; docs/sandbox.md "Egress", gVisor): the stale
// root-namespace probe of this runsc must answer truthfully through it, "root" in the host's
// namespace (runsc keeps refusing it, which would otherwise strip the host's addresses) and "not
// root" in a container's; everything else unchanged. The wrapper is rendered with a stand-in for
// runsc that runs the probe as runsc does (access() after joining a namespace), never the real
// runsc against the host's namespace. Then the registered runtime itself, with real Docker.
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { docker, PYTHON } from "./support";

const PROBE = "/proc/sys/net/core/rmem_default";
const dir = mkdtempSync(join(tmpdir(), "sigil-runsc-netstack-"));
const ns = `sigil-rn-${process.pid}`;
const nsPath = `/run/netns/${ns}`;
const hostNs = `/proc/${process.pid}/ns/net`;

// Stands in for runsc: for each namespace path, joins it and reports the probe; then what it sees.
const FAKE_RUNSC = `#!/bin/sh
for a in "$@"; do
  case "$a" in
  /proc/*/ns/net | /run/netns/*) if nsenter --net="$a" test -e ${PROBE}; then echo "probe $a root"; else echo "probe $a not-root"; fi ;;
  esac
done
echo "mntns $(readlink /proc/self/ns/mnt)"
echo "sack $(cat /proc/sys/net/ipv4/tcp_sack)"
echo "somaxconn $(cat /proc/sys/net/core/somaxconn)"
if touch /proc/sys/net/sigil-x 2>/dev/null; then echo "net writable"; else echo "net read-only"; fi
`;

function render(runsc: string, mnt: string): string {
  const out = join(dir, `wrapper-${Math.random().toString(36).slice(2)}`);
  const src = readFileSync(new URL("../../infra/runsc-netstack.sh", import.meta.url), "utf8");
  writeFileSync(out, src.replaceAll("@RUNSC@", runsc).replaceAll("@MNT@", mnt));
  chmodSync(out, 0o755);
  return out;
}

function run(wrapper: string, args: string[]) {
  const r = spawnSync(wrapper, args, { encoding: "utf8" });
  const lines = Object.fromEntries(
    r.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const i = l.lastIndexOf(" ");
        return [l.slice(0, i), l.slice(i + 1)];
      }),
  );
  return { status: r.status, stderr: r.stderr, lines };
}

let wrapper: string;
const mnt = join(dir, "mnt");

beforeAll(() => {
  writeFileSync(join(dir, "runsc"), FAKE_RUNSC);
  chmodSync(join(dir, "runsc"), 0o755);
  mkdirSync(mnt);
  wrapper = render(join(dir, "runsc"), mnt);
  execFileSync("ip", ["netns", "add", ns]);
});

afterAll(() => {
  spawnSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
});

describe("runsc-netstack wrapper", () => {
  it("answers runsc's probe truthfully for start: root in the host's namespace, not root in a container's", () => {
    const r = run(wrapper, ["--root", "/x", "start", hostNs, nsPath]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.lines[`probe ${hostNs}`]).toBe("root");
    expect(r.lines[`probe ${nsPath}`]).toBe("not-root");
    // The rest of /proc/sys/net reads as before, and nothing can be added to it.
    expect(r.lines.sack).toBe(readFileSync("/proc/sys/net/ipv4/tcp_sack", "utf8").trim());
    expect(r.lines.somaxconn).toBe(readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim());
    expect(r.lines.net).toBe("read-only");
    expect(r.lines.mntns).not.toBe(readlinkSync("/proc/self/ns/mnt"));
  });

  it("runs every other command as runsc itself, in the host's mount namespace", () => {
    const r = run(wrapper, ["--root", "/x", "create", "--bundle", "/b", hostNs, nsPath]);
    expect(r.status).toBe(0);
    expect(r.lines.mntns).toBe(readlinkSync("/proc/self/ns/mnt"));
    expect(r.lines[`probe ${hostNs}`]).toBe("root");
    // On this kernel the stale probe says "root" in any namespace: the reason for the wrapper.
    const bare = spawnSync("nsenter", [`--net=${nsPath}`, "test", "-e", PROBE]).status === 0;
    expect(r.lines[`probe ${nsPath}`]).toBe(bare ? "root" : "not-root");
  });

  it("leaves no mount behind on the host", () => {
    run(wrapper, ["start", nsPath]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain("sigil-runsc-netstack");
    expect(readdirSync(mnt)).toEqual([]);
  });

  it("fails closed, before runsc runs, when runsc or its mount point is missing", () => {
    const noRunsc = run(render(join(dir, "absent"), mnt), ["start", nsPath]);
    expect(noRunsc.status).toBe(127);
    expect(noRunsc.stderr).toContain(`${join(dir, "absent")} is missing; run infra/docker.sh`);
    const noMnt = run(render(join(dir, "runsc"), join(dir, "absent-mnt")), ["start", nsPath]);
    expect(noMnt.status).toBe(127);
    expect(noMnt.stderr).toContain("absent-mnt is missing");
    expect(noMnt.lines).toEqual({});
  });
});

describe("runsc-net as registered by infra/docker.sh", () => {
  it("runs a container on an internal network on gVisor's netstack, in Docker's namespace for it", async () => {
    const net = await docker.createNetwork({ Name: `sigil-rn-${process.pid}`, Internal: true });
    const c = await docker.createContainer({
      Image: PYTHON,
      Entrypoint: ["python3", "-c"],
      Cmd: ['import socket,time; print(socket.if_nametoindex("eth0"), flush=True); time.sleep(60)'],
      User: "1000:1000",
      HostConfig: {
        Runtime: "runsc-net",
        NetworkMode: net.id,
        ReadonlyRootfs: true,
        CapDrop: ["ALL"],
        SecurityOpt: ["no-new-privileges"],
        AutoRemove: false,
      },
    });
    try {
      await c.start();
      const info = await c.inspect();
      const ip = info.NetworkSettings.Networks[`sigil-rn-${process.pid}`]?.IPAddress;
      expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      // The netstack took the address off the namespace's eth0 (the host kernel no longer
      // answers for it); with --network=host it would still be there.
      const hostSide = execFileSync("nsenter", [
        `--net=${info.NetworkSettings.SandboxKey}`,
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "dev",
        "eth0",
      ]).toString();
      expect(hostSide).not.toContain(`${ip}/`);
      let logs = "";
      for (let i = 0; i < 100 && !logs.includes("\n"); i++) {
        logs = (await c.logs({ stdout: true, stderr: true })).toString("latin1");
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(logs).toContain("2\n");
    } finally {
      await c.remove({ force: true });
      await net.remove();
    }
  }, 60_000);
});
