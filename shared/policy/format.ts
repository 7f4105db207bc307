// Canonical printer: one layout per AST, so `format` is idempotent and policies diff cleanly.
// Parentheses are printed only where precedence needs them; comments are kept (hoisted to
// the start of the rule they were in).
import type { Expr, Literal, Policy, PolicyDocument, Requirement, Rule, Target } from "./ast";
import type { PolicyLimits } from "./errors";
import { parse } from "./parser";

const INDENT = "    ";
const LINE_WIDTH = 100;

/** Parses and prints canonical source. Throws PolicyError if the source does not parse. */
export function format(source: string, limits: Partial<PolicyLimits> = {}): string {
  return formatDocument(parse(source, limits));
}

export function formatDocument(doc: PolicyDocument): string {
  const blocks = doc.policies.map(formatPolicy);
  if (doc.endComments.length > 0) blocks.push(doc.endComments.join("\n"));
  return blocks.length === 0 ? "" : `${blocks.join("\n\n")}\n`;
}

function formatPolicy(p: Policy): string {
  const head = [...p.comments, `policy ${p.name} {`];
  const body: string[] = p.rules.map((r) => formatRule(r, INDENT));
  if (p.endComments.length > 0) body.push(p.endComments.map((c) => INDENT + c).join("\n"));
  if (body.length === 0) return `${head.join("\n")}}`;
  return `${head.join("\n")}\n${body.join("\n\n")}\n}`;
}

export function formatRule(r: Rule, indent: string): string {
  const lead = r.comments.map((c) => indent + c);
  const text = r.kind === "require" ? formatRequire(r, indent) : formatAllowDeny(r, indent);
  return [...lead, text].join("\n");
}

/** The rule without its condition, e.g. `allow: read(sensitive_data)`; names rules in decisions. */
export function ruleHead(r: Rule): string {
  if (r.kind !== "require") return `${r.kind}: ${formatTarget(r.target)}`;
  // An untargeted require is named `require`; its unmet items are named separately.
  if (!r.target) return "require";
  const items = r.items.map(formatRequirement);
  const list = items.length === 1 ? items[0]! : `[${items.join(", ")}]`;
  return `require: ${list.length > 60 ? `${list.slice(0, 59)}…` : list} for ${formatTarget(r.target)}`;
}

function formatAllowDeny(r: Extract<Rule, { kind: "allow" | "deny" }>, indent: string): string {
  const head = `${indent}${r.kind}: ${formatTarget(r.target)}`;
  if (!r.condition) return head;
  const flat = `${head} if ${formatExpr(r.condition)}`;
  const c = r.condition;
  if (flat.length <= LINE_WIDTH || c.kind !== "logic") return flat;
  // Long chains of one logical operator get one operand per line.
  const operands = flattenChain(c);
  const inner = indent + INDENT;
  const lines = operands.map((o, i) => `${inner}${o}${i < operands.length - 1 ? ` ${c.op}` : ""}`);
  return `${head} if (\n${lines.join("\n")}\n${indent})`;
}

function flattenChain(e: Extract<Expr, { kind: "logic" }>): string[] {
  const prec = PREC[e.op];
  const rights: Expr[] = [];
  let cur: Expr = e;
  while (cur.kind === "logic" && cur.op === e.op) {
    rights.push(cur.right);
    cur = cur.left;
  }
  return [wrap(cur, prec), ...rights.reverse().map((x) => wrap(x, prec + 1))];
}

function formatRequire(r: Extract<Rule, { kind: "require" }>, indent: string): string {
  const items = r.items.map(formatRequirement);
  const tail = r.target ? ` for ${formatTarget(r.target)}` : "";
  if (items.length === 1 && !items[0]!.startsWith("["))
    return `${indent}require: ${items[0]}${tail}`;
  const inner = indent + INDENT;
  return `${indent}require: [\n${items.map((i) => inner + i).join(",\n")}\n${indent}]${tail}`;
}

function formatRequirement(q: Requirement): string {
  if (q.kind === "condition") return formatExpr(q.expr);
  return q.value === undefined ? q.name : `${q.name} = ${formatLiteral(q.value)}`;
}

export function formatTarget(t: Target): string {
  return t.resource === undefined ? t.name : `${t.name}(${t.resource})`;
}

export function formatLiteral(v: Literal): string {
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

const PREC = { "||": 1, "&&": 2 } as const;

function prec(e: Expr): number {
  switch (e.kind) {
    case "logic":
      return PREC[e.op];
    case "not":
      return 3;
    case "cmp":
      return 4;
    case "arith":
      return e.op === "+" || e.op === "-" ? 5 : 6;
    case "neg":
      return 7;
    case "member":
    case "index":
    case "call":
      return 8;
    default:
      return 9;
  }
}

function wrap(e: Expr, min: number): string {
  const s = formatExpr(e);
  return prec(e) >= min ? s : `(${s})`;
}

export function formatExpr(e: Expr): string {
  switch (e.kind) {
    case "literal":
      return formatLiteral(e.value);
    case "ident":
      return e.name;
    case "array":
      return `[${e.items.map(formatExpr).join(", ")}]`;
    case "member":
      return `${wrap(e.object, 8)}.${e.name}`;
    case "index":
      return `${wrap(e.object, 8)}[${formatExpr(e.index)}]`;
    case "call":
      return `${wrap(e.object, 8)}.${e.method}(${e.args.map(formatExpr).join(", ")})`;
    case "not":
      return `!${wrap(e.operand, 3)}`;
    case "neg":
      return `-${wrap(e.operand, 7)}`;
    case "logic": {
      const p = PREC[e.op];
      return `${wrap(e.left, p)} ${e.op} ${wrap(e.right, p + 1)}`;
    }
    case "cmp":
      return `${wrap(e.left, 5)} ${e.op} ${wrap(e.right, 5)}`;
    case "arith": {
      const p = prec(e);
      return `${wrap(e.left, p)} ${e.op} ${wrap(e.right, p + 1)}`;
    }
    case "quant":
      return `${e.quantifier}(${formatExpr(e.list)}, |${e.param}| ${formatExpr(e.body)})`;
    case "len":
      return `len(${formatExpr(e.operand)})`;
  }
}
