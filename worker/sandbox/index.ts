// Sandbox driver: runs one job in one hardened container (Docker/runc = Tier 1, gVisor/runsc =
// Tier 2), with a warm pool of single-use containers. See docs/sandbox.md.
export {
  type ContainerNetwork,
  type ContainerShape,
  createOptions,
  DEFAULT_IMAGES,
  LABEL,
  runscHostPids,
  type SandboxConfig,
  type SandboxOptionsInput,
  SandboxOptionsSchema,
} from "./config";
export { formatOwner, type Liveness, liveness, type Owner, parseOwner, selfOwner } from "./owner";
export { buildJobArchive, buildRunScript, shQuote } from "./payload";
export type { PoolInfo } from "./pool";
export {
  type PreflightCheck,
  type PreflightOptions,
  type PreflightReport,
  preflight,
} from "./preflight";
export {
  cleanupDeadOwners,
  cleanupOrphans,
  type RunOptions,
  runJob,
  Sandbox,
  type ShutdownOptions,
} from "./sandbox";
export {
  DEFAULT_LIMITS,
  errorResult,
  type JobResult,
  type JobSpec,
  type JobSpecInput,
  JobSpecSchema,
  type JobStatus,
  type RuntimeName,
  SandboxClosedError,
  type SandboxEvent,
  type SandboxLimits,
  SandboxSpecError,
  Tier,
} from "./types";
