// Static tool review ("AI-driven tool review" in the security model, done deterministically):
// walks a tool schema, applies a versioned pattern database (data files under patterns/), and
// returns a risk score in [0,1], findings with evidence, and approve/review/reject.
import { z } from "zod";
import patternsV1 from "./patterns/v1.json";

const severitySchema = z.enum(["info", "low", "medium", "high", "critical"]);
export type Severity = z.infer<typeof severitySchema>;
const flagsSchema = z.string().regex(/^[iu]*$/, "only i and u flags");

const textRuleSchema = z.strictObject({
  id: z.string().min(1),
  kind: z.literal("text"),
  category: z.string().min(1),
  severity: severitySchema,
  title: z.string().min(1),
  targets: z
    .array(
      z.enum(["tool_name", "tool_description", "param_name", "param_description", "any_string"]),
    )
    .min(1),
  pattern: z.string().min(1),
  flags: flagsSchema,
  why: z.string().min(1),
});

const paramRuleSchema = z.strictObject({
  id: z.string().min(1),
  kind: z.literal("param"),
  category: z.string().min(1),
  severity: severitySchema,
  title: z.string().min(1),
  namePattern: z.string().min(1),
  flags: flagsSchema,
  shape: z.enum(["any", "free_form_string", "unbounded_string", "unbounded_array"]),
  why: z.string().min(1),
});

export const patternDatabaseSchema = z.strictObject({
  name: z.string().min(1),
  version: z.string().min(1),
  description: z.string().optional(),
  thresholds: z.strictObject({
    review: z.number().min(0).max(1),
    reject: z.number().min(0).max(1),
  }),
  severityWeights: z.strictObject({
    info: z.number().min(0).max(1),
    low: z.number().min(0).max(1),
    medium: z.number().min(0).max(1),
    high: z.number().min(0).max(1),
    critical: z.number().min(0).max(1),
  }),
  rules: z.array(z.discriminatedUnion("kind", [textRuleSchema, paramRuleSchema])).min(1),
});
export type PatternDatabase = z.infer<typeof patternDatabaseSchema>;

export interface Evidence {
  /** Where in the schema, e.g. `parameters.properties.command.description`. */
  path: string;
  /** What was inspected: tool name/description, a parameter's name/description, or any string. */
  field: "tool_name" | "tool_description" | "param_name" | "param_description" | "string" | "shape";
  /** The matched text (invisible characters shown as <U+XXXX>) or the shape that triggered. */
  matched: string;
}

export interface Finding {
  ruleId: string;
  category: string;
  severity: Severity;
  title: string;
  why: string;
  evidence: Evidence[];
}

export type Recommendation = "approve" | "review" | "reject";

export interface ReviewResult {
  riskScore: number;
  findings: Finding[];
  recommendation: Recommendation;
  patternsVersion: string;
}

type TextTarget = z.infer<typeof textRuleSchema>["targets"][number];
interface TextSite {
  target: TextTarget;
  path: string;
  text: string;
}
interface ParamSite {
  name: string;
  path: string;
  schema: Record<string, unknown>;
}

const MAX_WALK_DEPTH = 64;
const MAX_EVIDENCE_PER_FINDING = 10;

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Shows invisible/control characters as <U+XXXX> so evidence is readable and safe to log. */
export function visible(s: string): string {
  return s.replace(
    /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u180E\u00AD]/gu,
    (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}>`,
  );
}

function excerpt(text: string, index: number, length: number): string {
  const start = Math.max(0, index - 20);
  const end = Math.min(text.length, index + length + 20);
  return `${start > 0 ? "…" : ""}${visible(text.slice(start, end))}${end < text.length ? "…" : ""}`;
}

function types(schema: Record<string, unknown>): string[] | null {
  const t = schema.type;
  if (typeof t === "string") return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === "string");
  return null;
}

const constrained = (s: Record<string, unknown>): boolean =>
  Array.isArray(s.enum) || "const" in s || typeof s.pattern === "string";

function shapeMatches(shape: ParamRule["shape"], s: Record<string, unknown>): string | null {
  const t = types(s);
  const isString = t === null ? !("properties" in s || "items" in s) : t.includes("string");
  switch (shape) {
    case "any":
      return "parameter present";
    case "free_form_string":
      return isString && !constrained(s)
        ? `${t ? "type string" : "untyped"} with no enum, const or pattern`
        : null;
    case "unbounded_string":
      return t?.includes("string") && !constrained(s) && typeof s.maxLength !== "number"
        ? "type string with no maxLength"
        : null;
    case "unbounded_array":
      return t?.includes("array") && typeof s.maxItems !== "number"
        ? "type array with no maxItems"
        : null;
  }
}

type ParamRule = z.infer<typeof paramRuleSchema>;
type TextRule = z.infer<typeof textRuleSchema>;

/** Finds the parameters' JSON Schema in the common tool layouts (MCP, OpenAI, SchemaPin demos). */
function parametersOf(tool: Record<string, unknown>): { key: string; schema: unknown } | null {
  for (const key of ["inputSchema", "input_schema", "parameters", "inputs"]) {
    if (isObj(tool[key])) return { key, schema: tool[key] };
  }
  if (isObj(tool.function)) {
    const inner = parametersOf(tool.function);
    if (inner) return { key: `function.${inner.key}`, schema: inner.schema };
  }
  return "properties" in tool ? { key: "", schema: tool } : null;
}

const SUBSCHEMA_MAPS = ["$defs", "definitions", "patternProperties", "dependentSchemas"] as const;
const SUBSCHEMA_ONE = ["items", "additionalProperties", "not", "if", "then", "else", "contains"];
const SUBSCHEMA_LISTS = ["anyOf", "oneOf", "allOf", "prefixItems", "items"];

function collectParams(node: unknown, path: string, out: ParamSite[], depth: number): void {
  if (!isObj(node) || depth > MAX_WALK_DEPTH) return;
  const join = (k: string) => (path ? `${path}.${k}` : k);
  if (isObj(node.properties)) {
    for (const [name, sub] of Object.entries(node.properties)) {
      const p = join(`properties.${name}`);
      if (isObj(sub)) out.push({ name, path: p, schema: sub });
      collectParams(sub, p, out, depth + 1);
    }
  }
  for (const k of SUBSCHEMA_MAPS) {
    const m = node[k];
    if (isObj(m))
      for (const [n, sub] of Object.entries(m))
        collectParams(sub, join(`${k}.${n}`), out, depth + 1);
  }
  for (const k of SUBSCHEMA_ONE)
    if (isObj(node[k])) collectParams(node[k], join(k), out, depth + 1);
  for (const k of SUBSCHEMA_LISTS) {
    const l = node[k];
    if (!Array.isArray(l)) continue;
    for (let i = 0; i < l.length; i++) collectParams(l[i], join(`${k}[${i}]`), out, depth + 1);
  }
}

function collectStrings(node: unknown, path: string, out: TextSite[], depth: number): void {
  if (depth > MAX_WALK_DEPTH) return;
  if (typeof node === "string") {
    out.push({ target: "any_string", path: path || "$", text: node });
  } else if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) collectStrings(node[i], `${path}[${i}]`, out, depth + 1);
  } else if (isObj(node)) {
    for (const [k, v] of Object.entries(node)) {
      const p = path ? `${path}.${k}` : k;
      out.push({ target: "any_string", path: `${p} (key)`, text: k });
      collectStrings(v, p, out, depth + 1);
    }
  }
}

interface CompiledDb {
  db: PatternDatabase;
  text: { rule: TextRule; re: RegExp }[];
  param: { rule: ParamRule; re: RegExp }[];
}

function compile(raw: unknown): CompiledDb {
  const db = patternDatabaseSchema.parse(raw);
  const ids = new Set<string>();
  const text: CompiledDb["text"] = [];
  const param: CompiledDb["param"] = [];
  for (const rule of db.rules) {
    if (ids.has(rule.id)) throw new Error(`duplicate rule id ${rule.id} in ${db.name}`);
    ids.add(rule.id);
    if (rule.kind === "text") text.push({ rule, re: new RegExp(rule.pattern, rule.flags) });
    else param.push({ rule, re: new RegExp(rule.namePattern, rule.flags) });
  }
  return { db, text, param };
}

const SEVERITY_ORDER: Severity[] = ["info", "low", "medium", "high", "critical"];

export interface ToolReviewer {
  review(tool: Record<string, unknown>): ReviewResult;
  readonly patternsVersion: string;
}

/**
 * Builds a reviewer from one or more pattern databases (later ones extend earlier ones; rule ids
 * must be unique across all). Thresholds and weights come from the first database.
 */
export function createToolReviewer(databases: readonly unknown[] = [patternsV1]): ToolReviewer {
  if (databases.length === 0) throw new Error("at least one pattern database is required");
  const compiled = databases.map(compile);
  const allIds = compiled.flatMap((c) => c.db.rules.map((r) => r.id));
  if (new Set(allIds).size !== allIds.length)
    throw new Error("rule ids must be unique across databases");
  const primary = compiled[0]!.db;
  const patternsVersion = compiled.map((c) => `${c.db.name}@${c.db.version}`).join("+");

  function review(tool: Record<string, unknown>): ReviewResult {
    const params: ParamSite[] = [];
    const located = parametersOf(tool);
    if (located) collectParams(located.schema, located.key, params, 0);

    const sites: TextSite[] = [];
    if (typeof tool.name === "string")
      sites.push({ target: "tool_name", path: "name", text: tool.name });
    if (typeof tool.description === "string") {
      sites.push({ target: "tool_description", path: "description", text: tool.description });
    }
    for (const p of params) {
      sites.push({ target: "param_name", path: p.path, text: p.name });
      for (const k of ["description", "title"]) {
        const v = p.schema[k];
        if (typeof v === "string")
          sites.push({ target: "param_description", path: `${p.path}.${k}`, text: v });
      }
    }
    collectStrings(tool, "", sites, 0);

    const findings: Finding[] = [];
    for (const c of compiled) {
      for (const { rule, re } of c.text) {
        const evidence: Evidence[] = [];
        const seen = new Set<string>();
        for (const site of sites) {
          // any_string covers every string, the specific sites included (they label evidence better).
          if (!rule.targets.includes(site.target) && !rule.targets.includes("any_string")) continue;
          const m = re.exec(site.text);
          if (!m) continue;
          // any_string overlaps the specific targets; report each location once.
          const where = `${site.path.replace(/ \(key\)$/, "")}`;
          if (seen.has(where)) continue;
          seen.add(where);
          evidence.push({
            path: site.path,
            field: site.target === "any_string" ? "string" : site.target,
            matched: excerpt(site.text, m.index, m[0].length),
          });
        }
        if (evidence.length > 0) findings.push(finding(rule, evidence));
      }
      for (const { rule, re } of c.param) {
        const evidence: Evidence[] = [];
        for (const p of params) {
          if (!re.test(p.name)) continue;
          const shape = shapeMatches(rule.shape, p.schema);
          if (shape)
            evidence.push({ path: p.path, field: "shape", matched: `${p.name}: ${shape}` });
        }
        if (evidence.length > 0) findings.push(finding(rule, evidence));
      }
    }

    // Noisy-OR over rules: each rule counts once, however many places it matched.
    const riskScore = round(
      1 - findings.reduce((acc, f) => acc * (1 - primary.severityWeights[f.severity]), 1),
    );
    const worst = findings.reduce((w, f) => Math.max(w, SEVERITY_ORDER.indexOf(f.severity)), -1);
    const recommendation: Recommendation =
      worst >= SEVERITY_ORDER.indexOf("critical") || riskScore >= primary.thresholds.reject
        ? "reject"
        : worst >= SEVERITY_ORDER.indexOf("high") || riskScore >= primary.thresholds.review
          ? "review"
          : "approve";
    findings.sort(
      (a, b) =>
        SEVERITY_ORDER.indexOf(b.severity) - SEVERITY_ORDER.indexOf(a.severity) ||
        a.ruleId.localeCompare(b.ruleId),
    );
    return { riskScore, findings, recommendation, patternsVersion };
  }

  return { review, patternsVersion };
}

function finding(rule: TextRule | ParamRule, evidence: Evidence[]): Finding {
  return {
    ruleId: rule.id,
    category: rule.category,
    severity: rule.severity,
    title: rule.title,
    why: rule.why,
    evidence: evidence.slice(0, MAX_EVIDENCE_PER_FINDING),
  };
}

const round = (x: number): number => Math.round(x * 1e4) / 1e4;

let defaultReviewer: ToolReviewer | null = null;
/** Reviews a tool schema against the bundled pattern database (v1). */
export function reviewTool(tool: Record<string, unknown>): ReviewResult {
  defaultReviewer ??= createToolReviewer();
  return defaultReviewer.review(tool);
}
