// Offline policy checks (docs/cli.md "Policy tests"): the compiler and evaluator the service uses,
// with the identity the server would set, against a table of cases in JSON or YAML.
import { basename, extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { sha256Hex } from "../shared/encoding";
import {
  buildPolicySet,
  DEFAULT_CLASSIFICATION_LEVELS,
  type Decision,
  type EnforcementMode,
  EvaluationRequestSchema,
  PolicyError,
  type PolicySet,
  parse,
  reservedAttributesIn,
  withServerAttributes,
} from "../shared/policy";

export interface LocatedError {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** Parses and compiles one document; its diagnostics as file:line:col errors. */
export function checkPolicy(
  file: string,
  source: string,
  opts: { levels?: readonly string[]; mode?: EnforcementMode } = {},
): { set?: PolicySet; errors: LocatedError[] } {
  try {
    const set = buildPolicySet(
      [{ name: policyName(file), sha256: sha256Hex(source), doc: parse(source) }],
      {
        classificationLevels: opts.levels ?? DEFAULT_CLASSIFICATION_LEVELS,
        mode: opts.mode ?? "strict",
      },
    );
    return { set, errors: [] };
  } catch (e) {
    if (e instanceof PolicyError)
      return {
        errors: e.diagnostics.map((d) => ({
          file,
          line: d.line,
          column: d.column,
          message: d.message,
        })),
      };
    return { errors: [{ file, line: 1, column: 1, message: (e as Error).message }] };
  }
}

/** A document's name from its file: `security-model.policy` → `security-model`. */
export function policyName(file: string): string {
  return basename(file, extname(file)) || "policy";
}

const identitySchema = z.strictObject({
  kid: z.string().default("test-kid"),
  subject: z.string().default("test-subject"),
  role: z.string().default("agent"),
  groups: z.array(z.string()).default([]),
  trust: z.number().min(0).max(1).default(0),
});

const caseSchema = z.strictObject({
  name: z.string().min(1),
  request: EvaluationRequestSchema,
  /** The caller as the server would authenticate it (agent.* in the context). */
  agent: identitySchema.optional(),
  /** request.time, RFC 3339; default 2026-01-01T00:00:00Z so results do not depend on the clock. */
  time: z.string().datetime().optional(),
  expect: z.strictObject({
    decision: z.enum(["allow", "deny", "allow_with_conditions", "require_approval"]),
    approver: z.string().optional(),
    enforced: z.boolean().optional(),
  }),
});
export const casesFileSchema = z.strictObject({
  mode: z.enum(["strict", "permissive"]).optional(),
  cases: z.array(caseSchema).min(1),
});
export type PolicyCase = z.infer<typeof caseSchema>;

/** Reads a cases file: YAML (a superset of JSON) either way. */
export function parseCases(file: string, text: string): z.infer<typeof casesFileSchema> {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message.split("\n")[0]}`);
  }
  const parsed = casesFileSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`${file}: ${i ? `${i.path.join(".")}: ${i.message}` : "invalid"}`);
  }
  return parsed.data;
}

export interface CaseOutcome {
  name: string;
  pass: boolean;
  expected: PolicyCase["expect"];
  got: { decision: Decision["decision"]; approver?: string; enforced: boolean; reason?: string };
}

export function runCases(set: PolicySet, cases: readonly PolicyCase[]): CaseOutcome[] {
  return cases.map((c) => {
    const reserved = reservedAttributesIn(c.request.context);
    if (reserved.length > 0)
      throw new Error(`case ${c.name}: context.${reserved[0]} is set by the server; use "agent"`);
    const who = identitySchema.parse(c.agent ?? {});
    const now = Date.parse(c.time ?? "2026-01-01T00:00:00Z");
    const d = set.evaluate({
      ...c.request,
      context: withServerAttributes(c.request.context, who, now),
    });
    const got = {
      decision: d.decision,
      enforced: d.enforced,
      ...(d.approver !== undefined ? { approver: d.approver } : {}),
      ...(d.reason !== undefined ? { reason: d.reason } : {}),
    };
    const pass =
      got.decision === c.expect.decision &&
      (c.expect.approver === undefined || got.approver === c.expect.approver) &&
      (c.expect.enforced === undefined || got.enforced === c.expect.enforced);
    return { name: c.name, pass, expected: c.expect, got };
  });
}
