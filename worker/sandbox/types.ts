// Job spec (external input: zod-validated) and result types of the sandbox driver.
import { z } from "zod";

export const MiB = 1024 * 1024;

export const Tier = z.enum(["docker", "gvisor"]);
export type Tier = z.infer<typeof Tier>;

export const DEFAULT_LIMITS = Object.freeze({
  memoryMb: 512,
  cpus: 0.5,
  pids: 128,
  outputBytes: MiB,
});

export const SandboxLimitsSchema = z.strictObject({
  memoryMb: z.number().int().min(32).max(65_536).default(DEFAULT_LIMITS.memoryMb),
  cpus: z.number().min(0.01).max(64).default(DEFAULT_LIMITS.cpus),
  pids: z.number().int().min(8).max(4096).default(DEFAULT_LIMITS.pids),
  outputBytes: z
    .number()
    .int()
    .min(0)
    .max(64 * MiB)
    .default(DEFAULT_LIMITS.outputBytes),
});
export type SandboxLimits = z.infer<typeof SandboxLimitsSchema>;

// Job ids become container labels and part of a container name, so keep them name-safe.
const JobId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "jobId must be 1-128 of [A-Za-z0-9_.-]");
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "invalid environment name");
const NoNul = z.string().refine((s) => !s.includes("\0"), "must not contain NUL");

/** A relative path inside /work; `.sigil/` is reserved for the run protocol. */
export const WorkPath = z
  .string()
  .min(1)
  .max(255)
  .refine((p) => !p.includes("\0") && !p.includes("\\"), "path must not contain NUL or backslash")
  .refine((p) => !p.startsWith("/"), "path must be relative to /work")
  .refine(
    (p) => p.split("/").every((seg) => seg !== "" && seg !== "." && seg !== ".."),
    "path segments must not be empty, '.' or '..'",
  )
  .refine((p) => p.split("/")[0] !== ".sigil", "'.sigil/' is reserved");

export const JobSpecSchema = z
  .strictObject({
    jobId: JobId,
    image: z.string().min(1).max(256),
    tier: Tier,
    command: z.array(NoNul).min(1).max(1024).optional(),
    code: NoNul.optional(),
    language: z.enum(["python", "sh"]).optional(),
    files: z.record(WorkPath, z.string()).optional(),
    stdin: z.string().optional(),
    env: z.record(EnvName, NoNul).optional(),
    timeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
    limits: SandboxLimitsSchema.default(SandboxLimitsSchema.parse({})),
  })
  .refine((s) => (s.command === undefined) !== (s.code === undefined), {
    message: "exactly one of command or code is required",
  })
  .refine((s) => s.language === undefined || s.code !== undefined, {
    message: "language only applies to code",
  });

export type JobSpecInput = z.input<typeof JobSpecSchema>;
export type JobSpec = z.output<typeof JobSpecSchema>;

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
