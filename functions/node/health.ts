// Dependency checks for /health on Node: Redis (reachable, persistence as infra/ sets it) and
// the local Docker Engine (reachable, runsc registered and its seccomp filter proven in effect by
// a cached probe container, sandbox images present).
import Docker from "dockerode";
import type { Redis } from "ioredis";
import type { SigilConfig } from "../../shared/config";
import type { HealthCheck } from "../routes/health";
import { probeImage, type RunscProbe, runscSeccompProbe } from "./runsc-probe";

export function redisChecks(redis: Redis): HealthCheck[] {
  return [
    {
      name: "redis",
      required: true,
      async check() {
        const pong = await redis.ping();
        const [, aof] = (await redis.config("GET", "appendonly")) as [string, string];
        const [, policy] = (await redis.config("GET", "maxmemory-policy")) as [string, string];
        if (aof !== "yes")
          return {
            ok: false,
            detail: "appendonly is off: acknowledged audit events could be lost",
          };
        if (policy !== "noeviction")
          return { ok: false, detail: `maxmemory-policy is ${policy}, BullMQ needs noeviction` };
        return { ok: pong === "PONG", detail: "reachable, AOF on, noeviction" };
      },
    },
  ];
}

export function dockerChecks(
  config: SigilConfig,
  docker = new Docker(),
  probe: RunscProbe = runscSeccompProbe({
    docker,
    runtime: config.sandbox.gvisor_runtime,
    image: probeImage(config.sandbox.images),
  }),
): HealthCheck[] {
  // One `docker info` shared by the checks of one /health call.
  let info: Promise<{ Runtimes?: Record<string, unknown> }> | undefined;
  const getInfo = () => {
    info ??= docker.info().finally(() => setTimeout(() => (info = undefined), 1000));
    return info;
  };
  const tier2 = config.sandbox.gvisor_runtime;
  // Probe at start-up, so the first /health does not wait for a container.
  void probe.result();
  return [
    {
      name: "dockerd",
      required: true,
      async check() {
        await docker.ping();
        return { ok: true, detail: "reachable" };
      },
    },
    {
      name: "runsc",
      required: true,
      async check() {
        const runtimes = Object.keys((await getInfo()).Runtimes ?? {});
        const missing = ["runsc", tier2].filter((r) => !runtimes.includes(r));
        if (missing.length > 0)
          return {
            ok: false,
            detail: `${missing.join(", ")} not registered with dockerd (runtimes: ${runtimes.join(", ")}); run infra/docker.sh`,
          };
        // Registered is not enough: the probe (cached) shows the filter in effect.
        const p = await probe.result();
        return {
          ok: p.ok,
          detail: `runtimes: ${runtimes.join(", ")}; ${p.detail} (probed ${new Date(p.at).toISOString()})`,
        };
      },
    },
    {
      name: "images",
      required: true,
      async check() {
        const images = await docker.listImages();
        const tags = new Set(images.flatMap((i) => i.RepoTags ?? []));
        const missing = config.sandbox.images.filter((i) => !tags.has(i));
        return missing.length === 0
          ? { ok: true, detail: config.sandbox.images.join(", ") }
          : { ok: false, detail: `missing: ${missing.join(", ")}; run infra/images.sh` };
      },
    },
  ];
}
