// Docker preflight: is dockerd reachable, are runc and runsc registered, is seccomp on (and, by
// a probe container, in effect under each gVisor runtime), are the sandbox images present?
// Per-check results; the worker fails fast on them and /health shows them.
import Docker from "dockerode";
import { probeImage, runscSeccompProbe } from "../../platform/node/runsc-probe";
import { DEFAULT_IMAGES } from "./config";

export interface PreflightCheck {
  name: string;
  ok: boolean;
  message: string;
}

export interface PreflightReport {
  ok: boolean;
  checks: PreflightCheck[];
}

export interface PreflightOptions {
  docker?: Docker;
  images?: string[];
  /** Runtime names that must be registered (default runc and runsc). */
  runtimes?: string[];
  timeoutMs?: number;
  /**
   * Run a probe container under each registered gVisor runtime (runsc*) and require Seccomp: 2:
   * registered is not enough, without --oci-seccomp jobs run with no syscall filter. Default on.
   */
  seccompProbe?: boolean;
  /** How long a seccomp probe may take. Default 60 s. */
  probeTimeoutMs?: number;
}

const FIX_DOCKER = "run `bash infra/docker.sh` as root";
const FIX_IMAGES = "run `bash infra/images.sh` as root";

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface InfoSubset {
  ServerVersion?: string;
  Runtimes?: Record<string, unknown>;
  SecurityOptions?: string[];
}

export async function preflight(opts: PreflightOptions = {}): Promise<PreflightReport> {
  const docker = opts.docker ?? new Docker();
  const images = opts.images ?? DEFAULT_IMAGES;
  const runtimes = opts.runtimes ?? ["runc", "runsc"];
  const timeoutMs = opts.timeoutMs ?? 5000;
  const checks: PreflightCheck[] = [];

  let info: InfoSubset;
  try {
    info = (await withTimeout(docker.info(), timeoutMs, "dockerd")) as InfoSubset;
    checks.push({
      name: "docker",
      ok: true,
      message: `dockerd ${info.ServerVersion ?? "?"} reachable`,
    });
  } catch (e) {
    checks.push({
      name: "docker",
      ok: false,
      message: `dockerd unreachable: ${msg(e)}; ${FIX_DOCKER}`,
    });
    // Nothing else can be checked without the daemon; report each as failed so nothing looks fine.
    for (const r of runtimes)
      checks.push({ name: `runtime:${r}`, ok: false, message: "not checked: dockerd unreachable" });
    checks.push({ name: "seccomp", ok: false, message: "not checked: dockerd unreachable" });
    if (opts.seccompProbe !== false)
      for (const r of runtimes.filter((r) => r.startsWith("runsc")))
        checks.push({
          name: `seccomp:${r}`,
          ok: false,
          message: "not checked: dockerd unreachable",
        });
    for (const i of images)
      checks.push({ name: `image:${i}`, ok: false, message: "not checked: dockerd unreachable" });
    return { ok: false, checks };
  }

  const registered = Object.keys(info.Runtimes ?? {});
  for (const r of runtimes) {
    const ok = registered.includes(r);
    checks.push({
      name: `runtime:${r}`,
      ok,
      message: ok
        ? `runtime ${r} registered`
        : `runtime ${r} is not registered in dockerd (has: ${registered.join(", ") || "none"}); ${FIX_DOCKER}`,
    });
  }

  const seccomp = (info.SecurityOptions ?? []).some((o) => o.includes("name=seccomp"));
  checks.push({
    name: "seccomp",
    ok: seccomp,
    message: seccomp
      ? "dockerd applies its default seccomp profile"
      : "dockerd reports no seccomp support: containers would run without a syscall filter",
  });

  await Promise.all(
    images.map(async (image) => {
      try {
        const ii = await withTimeout(docker.getImage(image).inspect(), timeoutMs, "dockerd");
        const rev = ii.Config?.Labels?.["sigil.image.rev"];
        checks.push({
          name: `image:${image}`,
          ok: true,
          message: `image ${image} present${rev ? ` (rev ${rev})` : ""}`,
        });
      } catch (e) {
        const notFound = (e as { statusCode?: number }).statusCode === 404;
        checks.push({
          name: `image:${image}`,
          ok: false,
          message: notFound
            ? `image ${image} is missing; ${FIX_IMAGES}`
            : `cannot inspect image ${image}: ${msg(e)}`,
        });
      }
    }),
  );

  // The hardening in effect, not only configured: only with a registered runtime and the image.
  const image = probeImage(images);
  const haveImage = checks.some((c) => c.name === `image:${image}` && c.ok);
  if (opts.seccompProbe !== false) {
    for (const runtime of runtimes.filter((r) => r.startsWith("runsc"))) {
      const name = `seccomp:${runtime}`;
      if (!registered.includes(runtime) || !haveImage) {
        checks.push({ name, ok: false, message: `not checked: needs ${runtime} and ${image}` });
        continue;
      }
      const r = await runscSeccompProbe({
        docker,
        runtime,
        image,
        timeoutMs: opts.probeTimeoutMs ?? 60_000,
      }).result();
      checks.push({ name, ok: r.ok, message: r.ok ? r.detail : `${r.detail}; ${FIX_DOCKER}` });
    }
  }

  return { ok: checks.every((c) => c.ok), checks };
}
