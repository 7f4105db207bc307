// The sandbox driver as the worker uses it (the agreed shape of worker/sandbox). Declared here so
// the job consumer depends on the shape, not on the driver's internals.
import type { Tier } from "../../shared/risk";

export interface SandboxRunSpec {
  jobId: string;
  image: string;
  tier: Tier;
  command?: string[];
  code?: string;
  language?: "python" | "sh";
  files?: Record<string, string>;
  stdin?: string;
  env?: Record<string, string>;
  timeoutMs: number;
  limits: { memoryMb: number; cpus: number; pids: number; outputBytes: number };
}

export type SandboxRunStatus = "succeeded" | "failed" | "timeout" | "oom" | "killed" | "error";

export interface SandboxRunResult {
  status: SandboxRunStatus;
  exitCode: number | null;
  signal?: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  runtime: "runc" | "runsc";
  containerId?: string;
  /** Why an `error` happened, when the driver says. */
  error?: string;
}

export interface SandboxDriver {
  runJob(spec: SandboxRunSpec, opts?: { signal?: AbortSignal }): Promise<SandboxRunResult>;
  /** Removes containers an earlier run of this worker left behind. */
  cleanupOrphans(workerId: string): Promise<unknown>;
  /** Stops the warm pool and removes every container this driver created. */
  shutdown(): Promise<void>;
}
