// The security model's risk score and tier selection (SANDBOX.md), unchanged.
import { z } from "zod";

const unit = z
  .number({ error: "must be a number in [0, 1]" })
  .min(0, "must be in [0, 1]")
  .max(1, "must be in [0, 1]");

/** Inputs outside [0, 1] or of the wrong type are rejected, never clamped. */
export const riskInputSchema = z.strictObject({
  dataSensitivity: unit,
  codeTrustLevel: unit,
  networkAccess: unit,
  filesystemAccess: unit,
  externalApis: unit,
});
export type RiskInput = z.infer<typeof riskInputSchema>;

export type RiskLevel = "low" | "medium" | "high";
export type Tier = "docker" | "gvisor";

export interface RiskThresholds {
  medium: number;
  high: number;
}
export const defaultThresholds: RiskThresholds = { medium: 0.3, high: 0.7 };

export interface RiskAssessment {
  score: number;
  level: RiskLevel;
  tier: Tier;
}

export function riskScore(i: RiskInput): number {
  const s =
    i.dataSensitivity * 0.4 +
    (1 - i.codeTrustLevel) * 0.3 +
    0.1 * i.networkAccess +
    0.1 * i.filesystemAccess +
    0.1 * i.externalApis;
  // Round away float noise (0.1+0.2) so equal inputs give one score on every runtime.
  return Math.min(1, Math.round(s * 1e12) / 1e12);
}

export function riskLevel(score: number, t: RiskThresholds = defaultThresholds): RiskLevel {
  if (score >= t.high) return "high";
  if (score >= t.medium) return "medium";
  return "low";
}

export const tierForLevel = (level: RiskLevel): Tier => (level === "low" ? "docker" : "gvisor");

const tierRank: Record<Tier, number> = { docker: 0, gvisor: 1 };

/** A policy may raise a tier, never lower it. */
export const stricterTier = (a: Tier, b: Tier): Tier => (tierRank[a] >= tierRank[b] ? a : b);

export function assessRisk(
  input: RiskInput,
  t: RiskThresholds = defaultThresholds,
): RiskAssessment {
  const score = riskScore(input);
  const level = riskLevel(score, t);
  return { score, level, tier: tierForLevel(level) };
}

/**
 * The tier a job runs on: from its risk assessment, or the configured default when it has none,
 * then raised (never lowered) by any tier a policy demands.
 */
export function selectTier(
  risk: RiskInput | undefined,
  opts: { defaultTier: Tier; thresholds?: RiskThresholds; policyMinimum?: Tier },
): { tier: Tier; assessment?: RiskAssessment } {
  const assessment = risk ? assessRisk(risk, opts.thresholds) : undefined;
  let tier = assessment ? assessment.tier : opts.defaultTier;
  if (opts.policyMinimum) tier = stricterTier(tier, opts.policyMinimum);
  return assessment ? { tier, assessment } : { tier };
}
