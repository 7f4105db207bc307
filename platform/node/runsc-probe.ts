// Proof that gVisor's hardening is in effect, not only that runsc is registered: a probe container
// under the Tier 2 runtime reads /proc/self/status and must show `Seccomp: 2` (a filter applies to
// the job's syscalls). Without runsc's --oci-seccomp, gVisor ignores the OCI seccomp profile and
// shows 0 — which infra/docker.sh once left out one set-up in four. The result is cached: /health
// never starts a container per call. Used by /health (API) and by the worker's preflight.
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import type Docker from "dockerode";

/** The `Seccomp:` mode of a /proc/<pid>/status text: 0 off, 1 strict, 2 filter; undefined if absent. */
export function parseSeccompMode(status: string): number | undefined {
  const m = /^Seccomp:[ \t]*(\d+)[ \t]*$/m.exec(status);
  return m ? Number(m[1]) : undefined;
}

/** The image a seccomp probe runs: busybox when allowed (smallest, has /bin/cat). */
export const probeImage = (images: readonly string[]): string =>
  images.find((i) => i.startsWith("sigil/busybox:")) ?? images[0] ?? "sigil/busybox:1";

export interface ProbeResult {
  ok: boolean;
  /** The mode the probe read; undefined when it could not run or read it. */
  mode: number | undefined;
  detail: string;
  /** When the probe ran (ms since epoch). */
  at: number;
}

/** What a probe read means: only mode 2 proves a seccomp filter on the job's syscalls. */
export function judgeSeccomp(runtime: string, status: string, at = Date.now()): ProbeResult {
  const mode = parseSeccompMode(status);
  if (mode === 2)
    return { ok: true, mode, at, detail: `a probe container under ${runtime} shows Seccomp: 2` };
  return {
    ok: false,
    mode,
    at,
    detail:
      mode === undefined
        ? `a probe container under ${runtime} printed no Seccomp line`
        : `a probe container under ${runtime} shows Seccomp: ${mode}: jobs there run without a syscall filter; register ${runtime} with --oci-seccomp (infra/docker.sh)`,
  };
}

export interface RunscProbeOptions {
  docker: Docker;
  /** The Tier 2 runtime (config.sandbox.gvisor_runtime). */
  runtime: string;
  /** A sandbox image with /bin/cat (the busybox image by preference). */
  image: string;
  /** How long a good result is reused. Default 10 min. */
  okTtlMs?: number;
  /** How long a failed one is reused before the next probe. Default 30 s. */
  failTtlMs?: number;
  /** Longest a probe may take. Default 60 s. */
  timeoutMs?: number;
}

export interface RunscProbe {
  /** The cached result, probing when there is none or it is stale; one probe at a time. */
  result(): Promise<ProbeResult>;
  /** Probes run so far (each one a container). */
  readonly runs: number;
}

export function runscSeccompProbe(o: RunscProbeOptions): RunscProbe {
  const okTtl = o.okTtlMs ?? 600_000;
  const failTtl = o.failTtlMs ?? 30_000;
  let cached: ProbeResult | undefined;
  let inflight: Promise<ProbeResult> | undefined;
  let runs = 0;
  const fresh = (r: ProbeResult) => Date.now() - r.at < (r.ok ? okTtl : failTtl);
  return {
    get runs() {
      return runs;
    },
    result() {
      if (cached && fresh(cached)) return Promise.resolve(cached);
      inflight ??= (async () => {
        runs++;
        try {
          const out = await runProbe(o);
          return judgeSeccomp(o.runtime, out);
        } catch (e) {
          return {
            ok: false,
            mode: undefined,
            at: Date.now(),
            detail: `the seccomp probe under ${o.runtime} could not run: ${e instanceof Error ? e.message : String(e)}`,
          };
        }
      })().then((r) => {
        cached = r;
        inflight = undefined;
        return r;
      });
      return inflight;
    },
  };
}

/** One hardened, network-less container under the runtime; its /proc/self/status. */
async function runProbe(o: RunscProbeOptions): Promise<string> {
  const container = await o.docker.createContainer({
    Image: o.image,
    Entrypoint: ["/bin/cat"],
    Cmd: ["/proc/self/status"],
    User: "1000:1000",
    NetworkDisabled: true,
    Labels: { "sigil.probe": "seccomp" },
    HostConfig: {
      Runtime: o.runtime,
      NetworkMode: "none",
      ReadonlyRootfs: true,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      Memory: 64 * 1024 * 1024,
      PidsLimit: 64,
      // dockerd removes it when it exits, even if this process dies mid-probe.
      AutoRemove: true,
      LogConfig: { Type: "none", Config: {} },
    },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const stream = (await container.attach({
      stream: true,
      stdout: true,
      stderr: true,
    })) as unknown as Duplex;
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on("data", (b: Buffer) => chunks.push(b));
    o.docker.modem.demuxStream(stream, stdout, new PassThrough());
    const ended = new Promise<void>((resolve, reject) => {
      stream.once("end", resolve);
      stream.once("close", resolve);
      stream.once("error", reject);
      timer = setTimeout(
        () => reject(new Error(`no answer within ${o.timeoutMs ?? 60_000} ms`)),
        o.timeoutMs ?? 60_000,
      );
    });
    await container.start();
    await ended;
    return Buffer.concat(chunks).toString("utf8");
  } finally {
    clearTimeout(timer);
    await container.remove({ force: true }).catch(() => undefined);
  }
}
