// The policy engine (docs/policy-language.md): parse → compile to closures → evaluate, with a
// versioned store, a decision cache and a canonical formatter.
export type * from "./ast";
export { METHODS } from "./ast";
export {
  CHARS_PER_UNIT,
  type CompiledDocument,
  compileDocument,
  type EvaluationLimits,
} from "./compile";
export {
  type DecisionCacheOptions,
  type ErrorItem,
  PolicyEngine,
  type PolicyEngineOptions,
  PolicyNameError,
  type PolicySummary,
  type PutResult,
  type RollbackResult,
} from "./engine";
export { DEFAULT_LIMITS, type Diagnostic, PolicyError, type PolicyLimits } from "./errors";
export {
  buildPolicySet,
  DEFAULT_EVALUATION_LIMITS,
  EVAL_BUDGET,
  type EvaluationUsage,
  type NamedDocument,
  PolicySet,
  type PolicySetOptions,
  policySetVersion,
} from "./evaluate";
export { format, formatDocument, formatExpr } from "./format";
export * from "./identity";
export { KEYWORDS, parse } from "./parser";
export { type RevisionCacheOptions, RevisionCachingStore } from "./revision-cache";
export * from "./schema";
export {
  assertPolicyName,
  MemoryPolicyStore,
  type NewVersion,
  type PolicySnapshot,
  type PolicyStorePort,
} from "./store";
