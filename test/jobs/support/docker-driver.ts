// Test fixture: a plain fresh-container-per-job driver with the SANDBOX.md hardening, speaking the
// images' sigil-entry protocol (one tar on stdin). Stands in for worker/sandbox until it lands; it
// is real Docker/gVisor, not a mock. It records every container it creates, for "nothing ran" checks.
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import type { SandboxDriver, SandboxRunResult, SandboxRunSpec } from "../../../worker/jobs/driver";
import { tarArchive } from "./tar";

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function runScript(spec: SandboxRunSpec): Record<string, string> {
  const files: Record<string, string> = { ...(spec.files ?? {}) };
  const env = Object.entries(spec.env ?? {})
    .map(([k, v]) => `export ${k}=${q(v)}\n`)
    .join("");
  let cmd: string;
  if (spec.command) cmd = `exec ${spec.command.map(q).join(" ")}`;
  else if (spec.language === "python") {
    files[".sigil/main.py"] = spec.code ?? "";
    cmd = "exec python3 /work/.sigil/main.py";
  } else {
    files[".sigil/main.sh"] = spec.code ?? "";
    cmd = "exec sh /work/.sigil/main.sh";
  }
  files[".sigil/run"] = `${env}${cmd}\n`;
  files[".sigil/stdin"] = spec.stdin ?? "";
  return files;
}

export class TestDockerDriver implements SandboxDriver {
  readonly docker = new Docker();
  readonly created: string[] = [];
  /** jobId → HostConfig.Runtime as `docker inspect` reports it. */
  readonly inspectedRuntime = new Map<string, string>();
  constructor(readonly workerId: string) {}

  async runJob(spec: SandboxRunSpec): Promise<SandboxRunResult> {
    const runtime = spec.tier === "gvisor" ? "runsc" : "runc";
    const container = await this.docker.createContainer({
      Image: spec.image,
      User: "1000:1000",
      OpenStdin: true,
      StdinOnce: true,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      NetworkDisabled: true,
      Labels: { "sigil.job": spec.jobId, "sigil.tier": spec.tier, "sigil.worker": this.workerId },
      HostConfig: {
        Runtime: runtime,
        NetworkMode: "none",
        Memory: spec.limits.memoryMb * 1024 * 1024,
        MemorySwap: spec.limits.memoryMb * 1024 * 1024,
        NanoCpus: Math.round(spec.limits.cpus * 1e9),
        PidsLimit: spec.limits.pids,
        ReadonlyRootfs: true,
        Tmpfs: {
          "/work": "rw,size=64m,mode=0700,uid=1000,gid=1000",
          "/tmp": "rw,size=64m,mode=1777",
        },
        SecurityOpt: ["no-new-privileges"],
        CapDrop: ["ALL"],
      },
    });
    this.created.push(container.id);
    const inspected = await container.inspect();
    this.inspectedRuntime.set(spec.jobId, inspected.HostConfig.Runtime ?? "");
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on("data", (b: Buffer) => out.push(b));
    stderr.on("data", (b: Buffer) => err.push(b));
    const startedAt = new Date();
    try {
      const stream = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as NodeJS.ReadWriteStream;
      this.docker.modem.demuxStream(stream, stdout, stderr);
      const ended = new Promise<void>((r) => stream.on("end", () => r()));
      await container.start();
      stream.end(Buffer.from(tarArchive(runScript(spec))));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        container.kill().catch(() => undefined);
      }, spec.timeoutMs);
      const waited = (await container.wait()) as { StatusCode: number };
      clearTimeout(timer);
      await Promise.race([ended, new Promise((r) => setTimeout(r, 500))]);
      const info = await container.inspect();
      const finishedAt = new Date();
      const cap = spec.limits.outputBytes;
      const so = Buffer.concat(out);
      const se = Buffer.concat(err);
      const code = waited.StatusCode;
      const status = timedOut
        ? "timeout"
        : info.State.OOMKilled
          ? "oom"
          : code === 0
            ? "succeeded"
            : code > 128 && code < 160
              ? "killed"
              : "failed";
      return {
        status,
        exitCode: code,
        signal: status === "killed" ? `SIG${code - 128}` : null,
        stdout: so.subarray(0, cap).toString("utf8"),
        stderr: se.subarray(0, cap).toString("utf8"),
        truncated: so.length > cap || se.length > cap,
        durationMs: finishedAt.getTime() - startedAt.getTime(),
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        runtime,
        containerId: container.id,
      };
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  async cleanupOrphans(workerId: string): Promise<number> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [`sigil.worker=${workerId}`] },
    });
    for (const c of list)
      await this.docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    return list.length;
  }

  async shutdown(): Promise<void> {
    await this.cleanupOrphans(this.workerId);
  }
}
