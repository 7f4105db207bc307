// Which limits hold for a caller: the `[limits]` defaults, then the caller's role's overrides
// (`[limits.roles.<role>]`), then the `limits` an admin set on its key record. Pure.
import { z } from "zod";
import type { SigilConfig } from "../config";
import type { BucketRule } from "./bucket";
import type { LimitKind } from "./ports";

export interface Limits {
  requestsPerSecond: number;
  evaluationsPerSecond: number;
  auditAppendsPerSecond: number;
  /** Most jobs a submitter may have unfinished (queued or running). */
  queuedJobs: number;
  /** Most jobs of a submitter running at once. */
  runningJobs: number;
}

const rate = z.number().gt(0).max(1_000_000);
const count = z.number().int().min(1).max(1_000_000);

/** The optional `limits` of a key record (POST /v1/keys): each one overrides the role's. */
export const keyLimitsSchema = z.strictObject({
  requestsPerSecond: rate.optional(),
  evaluationsPerSecond: rate.optional(),
  auditAppendsPerSecond: rate.optional(),
  queuedJobs: count.optional(),
  runningJobs: count.max(4096).optional(),
});
export type KeyLimits = z.infer<typeof keyLimitsSchema>;

export type LimitsConfig = SigilConfig["limits"];
type Overrides = Partial<
  Record<keyof Omit<LimitsConfig, "roles" | "burst_seconds" | "audit_window_ms">, number>
>;

export function resolveLimits(cfg: LimitsConfig, role?: string, key?: KeyLimits): Limits {
  const r: Overrides = (cfg.roles as Record<string, Overrides | undefined>)[role ?? ""] ?? {};
  return {
    requestsPerSecond: key?.requestsPerSecond ?? r.requests_per_second ?? cfg.requests_per_second,
    evaluationsPerSecond:
      key?.evaluationsPerSecond ?? r.evaluations_per_second ?? cfg.evaluations_per_second,
    auditAppendsPerSecond:
      key?.auditAppendsPerSecond ?? r.audit_appends_per_second ?? cfg.audit_appends_per_second,
    queuedJobs: key?.queuedJobs ?? r.queued_jobs ?? cfg.queued_jobs,
    runningJobs: key?.runningJobs ?? r.running_jobs ?? cfg.running_jobs,
  };
}

export type RateKind = Extract<LimitKind, "requests" | "evaluations" | "audit_appends">;

/** The bucket rule of a rate: `rate` per second, holding `burst_seconds` of it (at least 1). */
export function ruleFor(limits: Limits, kind: RateKind, burstSeconds: number): BucketRule {
  const rate =
    kind === "requests"
      ? limits.requestsPerSecond
      : kind === "evaluations"
        ? limits.evaluationsPerSecond
        : limits.auditAppendsPerSecond;
  return { rate, burst: Math.max(1, Math.ceil(rate * burstSeconds)) };
}
