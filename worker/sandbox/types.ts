// Job spec and result types of the sandbox driver. The spec and its bounds are the shared
// definition (shared/jobs/schema.ts), the same one the API validates submissions with.
import { z } from "zod";
import {
  DEFAULT_LIMITS,
  type JobLimits,
  type SandboxJobSpec,
  type SandboxJobSpecInput,
  sandboxJobSpecSchema,
} from "../../shared/jobs/schema";

export const MiB = 1024 * 1024;

export const Tier = z.enum(["docker", "gvisor"]);
export type Tier = z.infer<typeof Tier>;

export { DEFAULT_LIMITS };
export type SandboxLimits = JobLimits;

export const JobSpecSchema = sandboxJobSpecSchema;
export type JobSpecInput = SandboxJobSpecInput;
export type JobSpec = SandboxJobSpec;

export type JobStatus = "succeeded" | "failed" | "timeout" | "oom" | "killed" | "error";
export type RuntimeName = "runc" | "runsc";

export interface JobResult {
  jobId: string;
  status: JobStatus;
  /** The container's exit code; null when it never produced one (status "error"). */
  exitCode: number | null;
  /** Signal name when a signal ended the job (status "killed", "timeout", "oom"). */
  signal?: string;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr went over limits.outputBytes and was cut. */
  truncated: boolean;
  /** Job time only: from handing the job to the container to its exit (no pool wait, no create). */
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  runtime: RuntimeName;
  containerId: string;
  image: string;
  tier: Tier;
  /** Whether the container came from the warm pool (false: created for this job). */
  warm: boolean;
  /** Why, for status "error" (infrastructure failure; the queue may retry). */
  error?: string;
}

/**
 * A job that ended without an exit of its own (status "error": an infrastructure failure, which
 * the queue may retry). The sandbox and the job consumer both report failures in this one shape.
 */
export function errorResult(
  job: Pick<JobResult, "jobId" | "image" | "tier">,
  error: string,
  container?: { id: string; warm: boolean },
): JobResult {
  const now = new Date().toISOString();
  return {
    jobId: job.jobId,
    status: "error",
    exitCode: null,
    stdout: "",
    stderr: "",
    truncated: false,
    durationMs: 0,
    startedAt: now,
    finishedAt: now,
    runtime: job.tier === "gvisor" ? "runsc" : "runc",
    containerId: container?.id ?? "",
    image: job.image,
    tier: job.tier,
    warm: container?.warm ?? false,
    error,
  };
}

/** Thrown (never returned) when a spec is invalid or not allowed: nothing ran, do not retry. */
export class SandboxSpecError extends Error {
  override readonly name = "SandboxSpecError";
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Thrown by runJob after shutdown() started: the worker must not take new jobs. */
export class SandboxClosedError extends Error {
  override readonly name = "SandboxClosedError";
  constructor() {
    super("sandbox is shutting down");
  }
}

export interface SandboxEvent {
  type:
    | "pool.filled"
    | "pool.fill_failed"
    | "pool.discarded"
    | "container.remove_failed"
    | "orphans.removed";
  message: string;
  containerId?: string;
  pool?: string;
}
