// Dependency checks for /health on Node: Redis (reachable, persistence as infra/ sets it) and
// the local Docker Engine (reachable, runsc registered, sandbox images present).
import Docker from "dockerode";
import type { Redis } from "ioredis";
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
  ];
}

export function dockerChecks(config: SigilConfig, docker = new Docker()): HealthCheck[] {
  // One `docker info` shared by the checks of one /health call.
  let info: Promise<{ Runtimes?: Record<string, unknown> }> | undefined;
  const getInfo = () => {
    info ??= docker.info().finally(() => setTimeout(() => (info = undefined), 1000));
    return info;
  };
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
        return runtimes.includes("runsc")
          ? { ok: true, detail: `runtimes: ${runtimes.join(", ")}` }
          : {
              ok: false,
              detail: `runsc is not registered with dockerd (runtimes: ${runtimes.join(", ")}); run infra/docker.sh`,
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
