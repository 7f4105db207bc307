// The worker's sandbox: worker/sandbox's Sandbox (hardened containers + warm pool) configured from
// the settings, behind the SandboxDriver shape the consumer depends on.
import type { SigilConfig } from "../../shared/config";
import { preflight, Sandbox } from "../sandbox";
import type { SandboxDriver } from "./driver";

export function createSandboxDriver(
  workerId: string,
  config: SigilConfig,
): {
  driver: SandboxDriver;
  preflight: () => Promise<string[]>;
  warm: () => Promise<void>;
  /** Each warm pool's counts ("image/tier"), for the jobs benchmark. */
  poolInfo: () => ReturnType<Sandbox["poolInfo"]>;
} {
  const size = config.sandbox.warm_pool_size;
  const sandbox = new Sandbox({
    workerId,
    images: config.sandbox.images,
    gvisorRuntime: config.sandbox.gvisor_runtime,
    capAdd: config.sandbox.cap_add,
    pools:
      size > 0
        ? config.sandbox.images.flatMap((image) =>
            (["docker", "gvisor"] as const).map((tier) => ({
              image,
              tier,
              size,
              max: Math.max(size, config.sandbox.warm_pool_max),
            })),
          )
        : [],
  });
  return {
    driver: {
      runJob: (spec, opts) => sandbox.runJob(spec, opts),
      cleanupOrphans: () => sandbox.cleanupOrphans(),
      drain: () => sandbox.drainPools(),
      shutdown: () => sandbox.shutdown(),
    },
    preflight: async () => {
      const report = await preflight({
        images: config.sandbox.images,
        runtimes: ["runc", config.sandbox.gvisor_runtime],
      });
      return report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`);
    },
    warm: () => sandbox.warm(),
    poolInfo: () => sandbox.poolInfo(),
  };
}
