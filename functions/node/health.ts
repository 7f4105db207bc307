// Dependency checks for /health on Node: Redis (reachable, persistence as infra/ sets it, a
// memory ceiling with headroom) and
// the local Docker Engine (reachable, runsc registered and its seccomp filter proven in effect by
// a cached probe container, sandbox images present).
import Docker from "dockerode";
import type { Redis } from "ioredis";
import { probeImage, type RunscProbe, runscSeccompProbe } from "../../platform/node/runsc-probe";
import type { SigilConfig } from "../../shared/config";
import type { HealthCheck } from "../routes/health";

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
    {
      // With noeviction a full Redis refuses writes: audit appends, jobs and nonces fail (closed).
      // infra/redis.sh sets the ceiling; this says how close to it Redis is.
      name: "redis-memory",
      required: true,
      async check() {
        const info = await redis.info("memory");
        const field = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, "m").exec(info)?.[1]);
        const used = field("used_memory");
        const max = field("maxmemory");
        if (!Number.isFinite(used) || !Number.isFinite(max))
          return { ok: false, detail: "INFO memory did not report used_memory and maxmemory" };
        if (max === 0)
          return {
            ok: false,
            detail: `no memory ceiling (maxmemory 0), ${mib(used)} used: run infra/redis.sh`,
          };
        const free = 1 - used / max;
        return {
          ok: free >= MIN_HEADROOM,
          detail: `${mib(used)} of ${mib(max)} used, ${(free * 100).toFixed(1)}% headroom${free >= MIN_HEADROOM ? "" : ` (below ${MIN_HEADROOM * 100}%: writes will soon be refused)`}`,
        };
      },
    },
  ];
}

/** Below this share of its ceiling free, Redis is reported down: writes are about to fail. */
const MIN_HEADROOM = 0.1;
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

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
