// zod schemas for everything that crosses the policy engine's boundary, with bounded sizes.
// The HTTP layer reuses these for validation and OpenAPI.
import { z } from "zod";

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Bounds on an evaluation request's context, so a request has a bounded evaluation cost. */
export const CONTEXT_LIMITS = {
  maxDepth: 32,
  maxNodes: 10_000,
  maxStringLength: 16_384,
  maxKeyLength: 256,
} as const;

const NAME_MAX = 256;
const name = z.string().min(1).max(NAME_MAX);

/** Walks a parsed JSON value once; returns a problem description or null. */
function checkJsonBounds(value: unknown): string | null {
  let nodes = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++nodes > CONTEXT_LIMITS.maxNodes) return `more than ${CONTEXT_LIMITS.maxNodes} values`;
    if (depth > CONTEXT_LIMITS.maxDepth) return `nested deeper than ${CONTEXT_LIMITS.maxDepth}`;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) return "numbers must be finite";
    } else if (
      typeof v === "undefined" ||
      typeof v === "function" ||
      typeof v === "bigint" ||
      typeof v === "symbol"
    ) {
      return `${typeof v} is not a JSON value`;
    } else if (typeof v === "string") {
      if (v.length > CONTEXT_LIMITS.maxStringLength)
        return `string longer than ${CONTEXT_LIMITS.maxStringLength}`;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push([x, depth + 1]);
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k.length > CONTEXT_LIMITS.maxKeyLength)
          return `key longer than ${CONTEXT_LIMITS.maxKeyLength}`;
        stack.push([x, depth + 1]);
      }
    }
  }
  return null;
}

// Bounds are checked first (iteratively), so a hostile nesting depth never reaches zod's
// recursive JSON schema.
export const JsonObjectSchema: z.ZodType<JsonObject> = z
  .unknown()
  .superRefine((v, ctx) => {
    const problem = checkJsonBounds(v);
    if (problem) ctx.addIssue({ code: "custom", message: `context too large: ${problem}` });
  })
  // Values were checked to be JSON by the walk above; a recursive z.json() here would also send
  // the OpenAPI generator into infinite recursion.
  .pipe(
    z.record(z.string(), z.unknown()).meta({ description: "JSON object (bounded size and depth)" }),
  ) as unknown as z.ZodType<JsonObject>;

export const EvaluationRequestSchema = z
  .object({
    action: name,
    resource: name.optional(),
    tags: z.array(name).max(64).optional(),
    context: JsonObjectSchema,
  })
  .strict();
export type EvaluationRequest = z.infer<typeof EvaluationRequestSchema>;

export const MAX_BATCH = 1000;
export const EvaluationBatchSchema = z
  .object({ requests: z.array(EvaluationRequestSchema).min(1).max(MAX_BATCH) })
  .strict();

export const DecisionKindSchema = z.enum([
  "allow",
  "deny",
  "allow_with_conditions",
  "require_approval",
]);
export type DecisionKind = z.infer<typeof DecisionKindSchema>;

export const LiteralSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const ConditionSchema = z.object({ name: z.string(), value: LiteralSchema.optional() });
export type Condition = z.infer<typeof ConditionSchema>;

export const MatchedRuleSchema = z.object({
  /** The store key the document was registered under. */
  document: z.string(),
  /** The `policy` block inside the document. */
  policy: z.string(),
  /** The rule's head, e.g. `deny: export(data)`. */
  rule: z.string(),
  effect: z.enum(["allow", "deny", "require", "error"]),
});
export type MatchedRule = z.infer<typeof MatchedRuleSchema>;

export const RuleProblemSchema = z.object({
  document: z.string(),
  policy: z.string(),
  rule: z.string(),
  message: z.string(),
});
export type RuleProblem = z.infer<typeof RuleProblemSchema>;

export const DecisionSchema = z.object({
  decision: DecisionKindSchema,
  enforced: z.boolean(),
  reason: z.string().optional(),
  conditions: z.array(ConditionSchema).optional(),
  approver: z.string().optional(),
  /** Every approver named by a `<who>_approval` obligation (approver is the first). */
  approvers: z.array(z.string()).optional(),
  matched: z.array(MatchedRuleSchema),
  /** Requirements that did not hold (each names its requirement in `message`). */
  unmet: z.array(RuleProblemSchema).optional(),
  /** Evaluation errors that made the decision fail closed. */
  errors: z.array(RuleProblemSchema).optional(),
  policySetVersion: z.string(),
  decisionId: z.string().optional(),
  /** The approval a `require_approval` opened, or the one this request redeemed or tried to. */
  approvalId: z.string().optional(),
  /** Why a redemption was refused (the decision is then `deny`). */
  approvalRefusal: z
    .enum([
      "not-found",
      "not-approved",
      "denied",
      "expired",
      "already-redeemed",
      "mismatch",
      "other-caller",
    ])
    .optional(),
});
export type Decision = z.infer<typeof DecisionSchema>;

export const EnforcementModeSchema = z.enum(["strict", "permissive"]);
export type EnforcementMode = z.infer<typeof EnforcementModeSchema>;

export const DEFAULT_CLASSIFICATION_LEVELS = [
  "public",
  "internal",
  "confidential",
  "secret",
  "top_secret",
] as const;

export const PolicyConfigSchema = z.object({
  mode: EnforcementModeSchema.default("strict"),
  /** Lowest first. */
  classificationLevels: z
    .array(z.string().min(1).max(NAME_MAX))
    .min(1)
    .max(256)
    .refine((l) => new Set(l).size === l.length, "classification levels must be unique")
    .default([...DEFAULT_CLASSIFICATION_LEVELS]),
});
export type PolicyConfig = z.infer<typeof PolicyConfigSchema>;

/** Store key of a policy document (also safe inside Redis keys and URLs). */
export const PolicyNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "policy name: 1-128 of A-Z a-z 0-9 _ . -");

export const PolicyVersionSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const RollbackSchema = z.object({ version: PolicyVersionSchema }).strict();

export const PolicyErrorItemSchema = z.object({
  line: z.number().int(),
  column: z.number().int(),
  message: z.string(),
});

export const PutPolicyResultSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  sha256: z.string(),
});

export const PolicyRecordSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  source: z.string(),
  sha256: z.string(),
  createdAt: z.string(),
});
export type PolicyRecord = z.infer<typeof PolicyRecordSchema>;

export const PolicyVersionInfoSchema = z.object({
  version: z.number().int(),
  sha256: z.string(),
  createdAt: z.string(),
  current: z.boolean(),
});
export type PolicyVersionInfo = z.infer<typeof PolicyVersionInfoSchema>;
