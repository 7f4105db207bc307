// The security model's risk score and tier selection (docs/sandbox.md), unchanged, and who supplies
// its inputs (docs/governance.md "Risk is bounded by what an admin granted").
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

/** The security model's booleans (true counts 1), or a number in [0, 1]. */
const unitOrFlag = z.union([z.boolean(), unit]);

/** POST /v1/risk/assess: every input, with booleans accepted for the three access flags. */
export const riskAssessSchema = z.strictObject({
  dataSensitivity: unit,
  codeTrustLevel: unit,
  networkAccess: unitOrFlag,
  filesystemAccess: unitOrFlag,
  externalApis: unitOrFlag,
});
export type RiskAssessInput = z.infer<typeof riskAssessSchema>;

/**
 * What a job's submitter may declare (POST /v1/jobs `risk`): any subset of the inputs. Declared
 * values can only raise the score (boundedRisk): codeTrustLevel may lower the key's trust, never
 * raise it.
 */
export const riskDeclarationSchema = z.strictObject({
  dataSensitivity: unit.optional(),
  codeTrustLevel: unit.optional(),
  networkAccess: unitOrFlag.optional(),
  filesystemAccess: unitOrFlag.optional(),
  externalApis: unitOrFlag.optional(),
});
export type RiskDeclaration = z.infer<typeof riskDeclarationSchema>;

const asUnit = (v: number | boolean | undefined): number =>
  typeof v === "boolean" ? (v ? 1 : 0) : (v ?? 0);

/** The numeric inputs of a fully given assessment request (booleans as 1 and 0). */
export const riskInputOf = (i: RiskAssessInput): RiskInput => ({
  dataSensitivity: i.dataSensitivity,
  codeTrustLevel: i.codeTrustLevel,
  networkAccess: asUnit(i.networkAccess),
  filesystemAccess: asUnit(i.filesystemAccess),
  externalApis: asUnit(i.externalApis),
});

/** What the server knows about a task without asking its submitter. */
export interface DerivedRisk {
  /** The admin-set trust of the submitting key: the only source of codeTrustLevel. */
  codeTrustLevel: number;
  /** E.g. a policy's data_sensitivity for the resource. */
  dataSensitivity?: number;
  /** 1 when the task asks for network. */
  networkAccess?: number;
  filesystemAccess?: number;
  externalApis?: number;
}

/**
 * The inputs a task is scored on: codeTrustLevel is the key's trust (a declaration may only lower
 * it), every other input the larger of declared and derived. So a caller's declaration can raise
 * its score, never lower it below what the server knows.
 */
export function boundedRisk(
  declared: RiskDeclaration | undefined,
  derived: DerivedRisk,
): RiskInput {
  const d = declared ?? {};
  return {
    dataSensitivity: Math.max(asUnit(d.dataSensitivity), derived.dataSensitivity ?? 0),
    codeTrustLevel: Math.min(d.codeTrustLevel ?? 1, derived.codeTrustLevel),
    networkAccess: Math.max(asUnit(d.networkAccess), derived.networkAccess ?? 0),
    filesystemAccess: Math.max(asUnit(d.filesystemAccess), derived.filesystemAccess ?? 0),
    externalApis: Math.max(asUnit(d.externalApis), derived.externalApis ?? 0),
  };
}

export type RiskLevel = "low" | "medium" | "high";
export type Tier = "docker" | "gvisor";

export interface RiskThresholds {
  medium: number;
  high: number;
}
export const defaultThresholds: RiskThresholds = { medium: 0.3, high: 0.7 };

/** The thresholds a configuration's `[risk]` section sets (docs/configuration.md). */
export const thresholdsOf = (risk: { medium_threshold: number; high_threshold: number }) => ({
  medium: risk.medium_threshold,
  high: risk.high_threshold,
});

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
 * then raised (never lowered) by any tier a policy demands. Code nobody vouched for
 * (codeTrustLevel 0) runs on at least the default tier whatever the thresholds say: with the
 * default gVisor, an untrusted key always lands on gVisor (docs/governance.md).
 */
export function selectTier(
  risk: RiskInput | undefined,
  opts: { defaultTier: Tier; thresholds?: RiskThresholds; policyMinimum?: Tier },
): { tier: Tier; assessment?: RiskAssessment } {
  const assessment = risk ? assessRisk(risk, opts.thresholds) : undefined;
  let tier = assessment ? assessment.tier : opts.defaultTier;
  if (risk && risk.codeTrustLevel === 0) tier = stricterTier(tier, opts.defaultTier);
  if (opts.policyMinimum) tier = stricterTier(tier, opts.policyMinimum);
  return assessment ? { tier, assessment } : { tier };
}
