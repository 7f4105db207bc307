// The worker's sandbox: worker/sandbox's Sandbox (hardened containers + warm pool) configured from
// the settings, behind the SandboxDriver shape the consumer depends on.
import Docker from "dockerode";
import type { SigilConfig } from "../../shared/config";
import { relayProblem } from "../egress";
import { JobNetworks, redisEndpoint } from "../egress/network";
import { errorResult, preflight, Sandbox, selfOwner } from "../sandbox";
import type { SandboxDriver, SandboxRunOptions, SandboxRunResult, SandboxRunSpec } from "./driver";

/**
 * Runs a job with egress rules on a network of its own (docs/sandbox.md, "Egress"), the network
 * and its proxy removed afterwards whatever happened; without rules, with no network at all.
 * A worker with `[network] egress` off runs no job that has rules (fail closed).
 */
export async function runWithEgress(
  sandbox: Sandbox,
  networks: JobNetworks | undefined,
  gvisorRuntime: string,
  spec: SandboxRunSpec,
  opts: SandboxRunOptions = {},
): Promise<SandboxRunResult> {
  const signal = opts.signal ? { signal: opts.signal } : {};
  if (!opts.egress || opts.egress.length === 0) return sandbox.runJob(spec, signal);
  if (!networks)
    return errorResult(spec, "job has network rules but [network] egress is off on this worker");
  let net: Awaited<ReturnType<JobNetworks["openFor"]>>;
  try {
    net = await networks.openFor(spec.jobId, opts.egress);
  } catch (e) {
    return errorResult(spec, `egress network setup failed: ${(e as Error).message}`);
  }
  let result: SandboxRunResult;
  try {
    result = await sandbox.runJob(spec, {
      ...signal,
      network: { ...net.attachment, gvisorRuntime },
    });
  } finally {
    result ??= errorResult(spec, "sandbox failure");
    result.egress = await net.close();
  }
  return result;
}

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
  const docker = new Docker();
  const sandbox = new Sandbox({
    docker,
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
  const redis = redisEndpoint(config.redis.url);
  const owner = selfOwner();
  const networks = config.network.egress
    ? new JobNetworks({
        docker,
        workerId,
        runId: sandbox.runId,
        ...(owner ? { owner } : {}),
        network: config.network,
        deniedEndpoints: redis ? [redis] : [],
      })
    : undefined;
  const gvisorNet = config.network.gvisor_network_runtime;
  return {
    driver: {
      runJob: (spec, opts) => runWithEgress(sandbox, networks, gvisorNet, spec, opts),
      cleanupOrphans: async () =>
        (await sandbox.cleanupOrphans()) + ((await networks?.cleanupOrphans(owner)) ?? 0),
      drain: () => sandbox.drainPools(),
      shutdown: () => sandbox.shutdown(),
    },
    preflight: async () => {
      const report = await preflight({
        images: config.sandbox.images,
        // With egress on, runsc-net too: registered, and a probe container starts through its
        // wrapper (docs/sandbox.md "Egress"); a host without it refuses to start (fail closed).
        runtimes: [
          ...new Set([
            "runc",
            config.sandbox.gvisor_runtime,
            ...(config.network.egress ? [gvisorNet] : []),
          ]),
        ],
      });
      const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`);
      const relay = config.network.egress ? relayProblem(config.network.relay) : null;
      if (relay) failed.push(`egress-relay: ${relay}`);
      return failed;
    },
    warm: () => sandbox.warm(),
    poolInfo: () => sandbox.poolInfo(),
  };
}
