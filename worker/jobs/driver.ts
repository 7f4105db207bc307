// The sandbox driver as the worker uses it (the agreed shape of worker/sandbox). Declared here so
// the job consumer depends on the shape, not on the driver's internals.
import type { EgressRule } from "../../shared/jobs/egress";
import type { JobEnvelope } from "../../shared/jobs/envelope";
import type { JobSpec } from "../../shared/jobs/schema";
import type { Tier } from "../../shared/risk";
import type { JobEgressOutcome } from "../egress/network";
import type { JobResult } from "../sandbox/types";

/** The signed spec (shared/jobs/schema.ts, the one definition) with the job's id and tier. */
export type SandboxRunSpec = Omit<JobSpec, "network"> & { jobId: string; tier: Tier };

/** What the sandbox runs for a verified envelope: its spec as signed, its id and tier. */
export function sandboxRunSpec(env: Pick<JobEnvelope, "jobId" | "tier" | "spec">): SandboxRunSpec {
  const { network: _network, ...spec } = env.spec;
  return { ...spec, jobId: env.jobId, tier: env.tier };
}

/**
 * The sandbox's JobResult (worker/sandbox/types.ts, the one definition) as far as the consumer
 * reads it: no identity fields (the envelope has them), container id and signal optional, and
 * whether the container came from the warm pool when the driver says (metrics count it).
 */
export type SandboxRunResult = Omit<
  JobResult,
  "jobId" | "image" | "tier" | "warm" | "containerId" | "signal"
> & {
  containerId?: string;
  signal?: string | null;
  warm?: boolean;
  /** A job with egress rules: its connection log's summary and refusals. */
  egress?: JobEgressOutcome;
};

export interface SandboxRunOptions {
  signal?: AbortSignal;
  /** The envelope's admitted `network.allow` (docs/sandbox.md, "Egress"); absent: no network. */
  egress?: readonly EgressRule[];
}

export interface SandboxDriver {
  runJob(spec: SandboxRunSpec, opts?: SandboxRunOptions): Promise<SandboxRunResult>;
  /**
   * Removes containers an earlier run of this worker left behind, and those of any worker on the
   * host whose process is gone; never a live worker's.
   */
  cleanupOrphans(workerId: string): Promise<unknown>;
  /** Stops the warm pool and removes its idle containers; running jobs go on. */
  drain?(): Promise<void>;
  /** Stops the warm pool and removes every container this driver created. */
  shutdown(): Promise<void>;
}
