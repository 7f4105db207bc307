// One container, one job: prepare (create → attach → start, container waits on stdin), then
// hand it exactly one job archive and collect the result. Warm and cold paths share this code.
import { randomBytes } from "node:crypto";
import { constants } from "node:os";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import type Docker from "dockerode";
import {
  type ContainerLabels,
  type ContainerNetwork,
  type ContainerShape,
  createOptions,
  type SandboxConfig,
} from "./config";
import { CappedOutput } from "./output";
import type { JobResult, JobSpec, JobStatus, RuntimeName } from "./types";

export interface ExitInfo {
  code: number | null;
  error?: string;
}

export interface Prepared {
  id: string;
  container: Docker.Container;
  socket: Duplex;
  exited: Promise<ExitInfo>;
  /** Set once the container has stopped (a warm container that died is never handed out). */
  hasExited: boolean;
  runtime: RuntimeName;
  shape: ContainerShape;
  warm: boolean;
}

const errMsg = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export async function prepareContainer(
  docker: Docker,
  cfg: SandboxConfig,
  shape: ContainerShape,
  labels: ContainerLabels,
  name?: string,
  net?: ContainerNetwork,
): Promise<Prepared> {
  const container = await docker.createContainer(createOptions(cfg, shape, labels, name, net));
  try {
    // Attach before start (as `docker run -i` does) so no output can be missed.
    const socket = (await container.attach({
      stream: true,
      stdin: true,
      stdout: true,
      stderr: true,
      hijack: true,
    })) as unknown as Duplex;
    // Until a job takes the container the socket stays paused; errors must not crash the worker.
    socket.on("error", () => {});
    await container.start();
    const p: Prepared = {
      id: container.id,
      container,
      socket,
      exited: Promise.resolve({ code: null }),
      hasExited: false,
      runtime: shape.tier === "gvisor" ? "runsc" : "runc",
      shape,
      warm: labels.pool === "warm",
    };
    p.exited = (container.wait() as Promise<{ StatusCode: number }>).then(
      (r) => {
        p.hasExited = true;
        return { code: typeof r.StatusCode === "number" ? r.StatusCode : null };
      },
      (e: unknown) => {
        p.hasExited = true;
        return { code: null, error: `waiting for the container failed: ${errMsg(e)}` };
      },
    );
    return p;
  } catch (e) {
    await container.remove({ force: true, v: true }).catch(() => {});
    throw e;
  }
}

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, n]) => [n as number, name]),
);

function delay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((res) => {
    t = setTimeout(res, ms);
  });
  return { promise, cancel: () => clearTimeout(t) };
}

export interface RunContext {
  killGraceMs: number;
  signal?: AbortSignal;
  /** Whether dockerd reported an OOM event for this container (see oom-watch.ts). */
  oomSeen?: (containerId: string) => Promise<boolean>;
}

/** Run one job in a prepared container. Never throws: failures become status "error". */
export async function runInContainer(
  p: Prepared,
  spec: JobSpec,
  archive: Uint8Array,
  ctx: RunContext,
): Promise<JobResult> {
  // The entrypoint reads this nonce line before the archive and ends both streams with
  // `<marker><status>\n` once the job has exited (see output.ts and infra/images.sh).
  const nonce = randomBytes(16).toString("hex");
  const out = new CappedOutput(spec.limits.outputBytes, `SIGIL-EXIT-${nonce}:`);
  // Statuses that need no inspection: a plain exit. 125 may be the entrypoint's own error and
  // 129+ a signal (an OOM kill among them), so those wait for dockerd's exit and inspect.
  const trailer = new Promise<ExitInfo & { trailer: true }>((res) => {
    out.onTrailer((status) => {
      if (status <= 128 && status !== 125) res({ code: status, trailer: true });
    });
  });
  const streamDone = new Promise<void>((res) => {
    p.socket.once("end", res);
    p.socket.once("close", res);
  });
  p.socket.on("data", (b: Buffer) => out.push(b));

  let ended: "timeout" | "abort" | undefined;
  let killRequested: Promise<void> | undefined;
  let onKill: () => void = () => {};
  const killSent = new Promise<"kill">((res) => {
    onKill = () => res("kill");
  });
  const kill = (why: "timeout" | "abort") => {
    if (killRequested) return;
    killRequested = p.container.kill({ signal: "SIGKILL" }).then(
      () => {
        ended ??= why; // only a kill that landed counts; one racing a normal exit does not
      },
      () => {},
    );
    onKill();
  };

  const startedAt = new Date();
  const t0 = performance.now();
  const deadline = setTimeout(() => kill("timeout"), spec.timeoutMs);
  const onAbort = () => kill("abort");
  if (ctx.signal?.aborted) onAbort();
  ctx.signal?.addEventListener("abort", onAbort, { once: true });

  p.socket.write(`${nonce}\n`);
  p.socket.write(archive);
  p.socket.end(); // EOF on the container's stdin (StdinOnce): the entrypoint starts the job

  // The exit normally arrives by itself; after a kill it must arrive within killGraceMs.
  let exit: ExitInfo | "kill" = await Promise.race([p.exited, trailer, killSent]);
  const fast = exit !== "kill" && "trailer" in exit;
  if (exit === "kill") {
    const grace = delay(ctx.killGraceMs);
    const raced = await Promise.race([p.exited, grace.promise.then(() => "grace" as const)]);
    grace.cancel();
    exit =
      raced === "grace" ? { code: null, error: "container did not stop after SIGKILL" } : raced;
  }
  const durationMs = performance.now() - t0;
  const finishedAt = new Date();
  clearTimeout(deadline);
  ctx.signal?.removeEventListener("abort", onAbort);
  if (killRequested) await killRequested;

  if (!fast) {
    // Output frames can trail the exit event slightly; wait briefly for the stream to close.
    const flush = delay(2000);
    await Promise.race([streamDone, flush.promise]);
    flush.cancel();
  }
  // With the trailer, every byte the job wrote is in; the container is force-removed afterwards
  // (anything it left running dies with it) off the job's path.
  p.socket.destroy();
  out.finish();

  let oom = false;
  let exitCode = exit.code;
  let error = exit.error;
  if (exit.code !== null && !fast) {
    try {
      let info = await p.container.inspect();
      // dockerd records OOMKilled from a separate OOM event that can land after the exit under
      // load; a SIGKILL nobody here sent gets a second look before it is called "killed".
      for (
        let i = 0;
        i < 3 && !info.State.OOMKilled && info.State.ExitCode === 137 && ended === undefined;
        i++
      ) {
        await new Promise((r) => setTimeout(r, 100));
        info = await p.container.inspect();
      }
      oom = info.State.OOMKilled === true;
      exitCode = info.State.ExitCode;
      if (!oom && exitCode === 137 && ended === undefined && ctx.oomSeen) {
        oom = await ctx.oomSeen(p.container.id);
      }
    } catch (e) {
      error = `inspecting the finished container failed: ${errMsg(e)}`;
    }
  }

  const stderr = out.text("stderr");
  let status: JobStatus;
  let signal: string | undefined;
  if (error !== undefined || exitCode === null) {
    status = "error";
    error ??= "no exit code";
  } else if (ended === "timeout") {
    status = "timeout";
    signal = "SIGKILL";
  } else if (ended === "abort") {
    status = "killed";
    signal = "SIGKILL";
  } else if (oom) {
    status = "oom";
    signal = "SIGKILL";
  } else if (exitCode === 125 && stderr.startsWith("sigil-entry:")) {
    status = "error";
    error = stderr.trim();
  } else if (exitCode === 0) {
    status = "succeeded";
  } else if (exitCode > 128 && exitCode <= 128 + 64) {
    // Shell convention (the entrypoint shell reports 128+n for a job ended by signal n).
    status = "killed";
    signal = SIGNAL_NAMES.get(exitCode - 128) ?? `SIG${exitCode - 128}`;
  } else {
    status = "failed";
  }

  return {
    jobId: spec.jobId,
    status,
    exitCode,
    ...(signal ? { signal } : {}),
    stdout: out.text("stdout"),
    stderr,
    truncated: out.truncated,
    durationMs: Math.round(durationMs * 1000) / 1000,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    runtime: p.runtime,
    containerId: p.id,
    image: spec.image,
    tier: spec.tier,
    warm: p.warm,
    ...(error !== undefined ? { error } : {}),
  };
}
