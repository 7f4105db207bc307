// AST → closures, once per document. No eval/new Function (workerd forbids them).
// Evaluation errors are thrown as EvalFailure and caught per rule by the evaluator.
import type { Expr, Literal, PolicyDocument, Rule, Target } from "./ast";
import { formatExpr, ruleHead } from "./format";

/** Per-evaluation state threaded through compiled closures. */
export interface Env {
  ctx: Record<string, unknown>;
  /** Lambda parameters, one slot per nesting level. */
  locals: unknown[];
  /** Lambda iterations left; bounds nested any/all over large arrays. */
  budget: number;
}

export type Fn = (env: Env) => unknown;

export class EvalFailure {
  constructor(readonly message: string) {}
}

export interface CompileOptions {
  /** Classification levels, lowest first. */
  levels: readonly string[];
}

export interface CompiledCheck {
  fn: Fn;
  /** Canonical source of the requirement, for "unmet requirement" reasons. */
  text: string;
}

export interface Obligation {
  name: string;
  value?: Literal;
}

export interface CompiledRule {
  kind: "allow" | "deny" | "require";
  document: string;
  policy: string;
  /** Rule head, unique inside its policy (e.g. `deny: export(data)`). */
  rule: string;
  /** Position inside the policy; used for a deterministic order. */
  index: number;
  target?: Target;
  condition?: Fn;
  /** require: obligations and expression requirements. */
  obligations: Obligation[];
  checks: CompiledCheck[];
  /** Per-evaluation de-duplication mark (see PolicySet). */
  stamp: number;
  /** The policy the rule belongs to. */
  owner: CompiledPolicy | null;
}

export interface CompiledPolicy {
  document: string;
  name: string;
  rules: CompiledRule[];
  /** The untargeted `require` rules: they gate this policy's allows. */
  requires: CompiledRule[];
  stamp: number;
  memo: "ok" | "unmet";
}

export interface CompiledDocument {
  name: string;
  policies: CompiledPolicy[];
}

const hasOwn = Object.prototype.hasOwnProperty;

export function compileDocument(
  name: string,
  doc: PolicyDocument,
  opts: CompileOptions,
): CompiledDocument {
  const levels = new Map<string, number>();
  opts.levels.forEach((l, i) => {
    levels.set(l, i);
  });
  const policies = doc.policies.map((p): CompiledPolicy => {
    const seen = new Map<string, number>();
    const rules = p.rules.map((r, index): CompiledRule => {
      const head = ruleHead(r);
      const n = (seen.get(head) ?? 0) + 1;
      seen.set(head, n);
      return compileRule(r, {
        document: name,
        policy: p.name,
        rule: n === 1 ? head : `${head} [${n}]`,
        index,
        levels,
      });
    });
    const policy: CompiledPolicy = {
      document: name,
      name: p.name,
      rules,
      requires: rules.filter((r) => r.kind === "require" && !r.target),
      stamp: 0,
      memo: "ok",
    };
    for (const r of rules) r.owner = policy;
    return policy;
  });
  return { name, policies };
}

interface RuleInfo {
  document: string;
  policy: string;
  rule: string;
  index: number;
  levels: Map<string, number>;
}

function compileRule(r: Rule, info: RuleInfo): CompiledRule {
  const base = {
    document: info.document,
    policy: info.policy,
    rule: info.rule,
    index: info.index,
    stamp: 0,
    owner: null,
  };
  if (r.kind !== "require") {
    return {
      ...base,
      kind: r.kind,
      target: r.target,
      ...(r.condition ? { condition: compileExpr(r.condition, [], info.levels) } : {}),
      obligations: [],
      checks: [],
    };
  }
  const obligations: Obligation[] = [];
  const checks: CompiledCheck[] = [];
  for (const item of r.items) {
    if (item.kind === "obligation") {
      obligations.push(
        item.value === undefined ? { name: item.name } : { name: item.name, value: item.value },
      );
    } else {
      checks.push({
        fn: compileExpr(item.expr, [], info.levels),
        text: clip(formatExpr(item.expr)),
      });
    }
  }
  return {
    ...base,
    kind: "require",
    ...(r.target ? { target: r.target } : {}),
    obligations,
    checks,
  };
}

// ---- expressions ----------------------------------------------------------

const clip = (s: string, n = 80): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function fail(e: Expr, why: string): EvalFailure {
  return new EvalFailure(`${clip(formatExpr(e))}: ${why}`);
}

export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = kindOf(v);
  }
  return clip(s, 40);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Structural equality of JSON values; values of different kinds are unequal. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!hasOwn.call(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
      return false;
  }
  return true;
}

function bool(e: Expr, v: unknown, what: string): boolean {
  if (v === true || v === false) return v;
  throw fail(e, `${what} must be a boolean, found ${kindOf(v)}`);
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** `scope` lists lambda parameters, innermost last; the slot is the position. */
export function compileExpr(e: Expr, scope: string[], levels: Map<string, number>): Fn {
  switch (e.kind) {
    case "literal": {
      const v = e.value;
      return () => v;
    }
    case "ident": {
      const slot = scope.lastIndexOf(e.name);
      if (slot >= 0) return (env) => env.locals[slot];
      const name = e.name;
      return (env) => {
        const c = env.ctx;
        if (hasOwn.call(c, name)) {
          const v = c[name];
          if (v !== undefined) return v;
        }
        throw fail(e, `'${name}' is absent from the context`);
      };
    }
    case "array": {
      const items = e.items.map((x) => compileExpr(x, scope, levels));
      return (env) => items.map((f) => f(env));
    }
    case "member": {
      const obj = compileExpr(e.object, scope, levels);
      const name = e.name;
      return (env) => {
        const o = obj(env);
        if (!isObject(o)) throw fail(e, `cannot read attribute '${name}' of ${kindOf(o)}`);
        if (hasOwn.call(o, name)) {
          const v = o[name];
          if (v !== undefined) return v;
        }
        throw fail(e, `attribute '${name}' is absent`);
      };
    }
    case "index": {
      const obj = compileExpr(e.object, scope, levels);
      const idx = compileExpr(e.index, scope, levels);
      return (env) => {
        const o = obj(env);
        const i = idx(env);
        if (Array.isArray(o)) {
          if (typeof i !== "number" || !Number.isInteger(i)) {
            throw fail(e, `array index must be an integer, found ${show(i)}`);
          }
          if (i < 0 || i >= o.length)
            throw fail(e, `index ${i} is out of range (length ${o.length})`);
          return o[i];
        }
        if (isObject(o)) {
          if (typeof i !== "string")
            throw fail(e, `object key must be a string, found ${kindOf(i)}`);
          if (hasOwn.call(o, i) && o[i] !== undefined) return o[i];
          throw fail(e, `attribute ${show(i)} is absent`);
        }
        throw fail(e, `cannot index ${kindOf(o)}`);
      };
    }
    case "call": {
      const obj = compileExpr(e.object, scope, levels);
      const arg = compileExpr(e.args[0]!, scope, levels);
      switch (e.method) {
        case "contains":
          return (env) => {
            const o = obj(env);
            const a = arg(env);
            if (Array.isArray(o)) {
              for (const x of o) if (deepEqual(x, a)) return true;
              return false;
            }
            if (typeof o === "string") {
              if (typeof a !== "string")
                throw fail(e, `substring must be a string, found ${kindOf(a)}`);
              return o.includes(a);
            }
            throw fail(e, `contains() needs an array or a string, found ${kindOf(o)}`);
          };
        case "starts_with":
        case "ends_with": {
          const starts = e.method === "starts_with";
          return (env) => {
            const o = obj(env);
            const a = arg(env);
            if (typeof o !== "string" || typeof a !== "string") {
              throw fail(e, `${e.method}() needs strings, found ${kindOf(o)} and ${kindOf(a)}`);
            }
            return starts ? o.startsWith(a) : o.endsWith(a);
          };
        }
      }
      break;
    }
    case "not": {
      const f = compileExpr(e.operand, scope, levels);
      return (env) => !bool(e, f(env), "operand of '!'");
    }
    case "neg": {
      const f = compileExpr(e.operand, scope, levels);
      return (env) => {
        const v = f(env);
        if (typeof v !== "number") throw fail(e, `'-' needs a number, found ${kindOf(v)}`);
        return -v;
      };
    }
    case "logic": {
      const l = compileExpr(e.left, scope, levels);
      const r = compileExpr(e.right, scope, levels);
      // Short-circuit: the right side is not evaluated (and cannot fail) when the left decides.
      if (e.op === "&&") {
        return (env) => bool(e, l(env), "left of '&&'") && bool(e, r(env), "right of '&&'");
      }
      return (env) => bool(e, l(env), "left of '||'") || bool(e, r(env), "right of '||'");
    }
    case "cmp":
      return compileCmp(e, scope, levels);
    case "arith":
      return compileArith(e, scope, levels);
    case "quant": {
      const list = compileExpr(e.list, scope, levels);
      const slot = scope.length;
      const body = compileExpr(e.body, [...scope, e.param], levels);
      const isAny = e.quantifier === "any";
      return (env) => {
        const xs = list(env);
        if (!Array.isArray(xs))
          throw fail(e, `${e.quantifier}() needs an array, found ${kindOf(xs)}`);
        for (const x of xs) {
          if (--env.budget < 0) throw fail(e, "evaluation budget exceeded");
          env.locals[slot] = x;
          const b = bool(e, body(env), "lambda body");
          if (b === isAny) return isAny;
        }
        return !isAny;
      };
    }
    case "len": {
      const f = compileExpr(e.operand, scope, levels);
      return (env) => {
        const v = f(env);
        if (typeof v === "string") return codePoints(v);
        if (Array.isArray(v)) return v.length;
        if (isObject(v)) return Object.keys(v).length;
        throw fail(e, `len() needs a string, array or object, found ${kindOf(v)}`);
      };
    }
  }
  // Unreachable for a well-typed AST; fail closed if it ever happens.
  return () => {
    throw fail(e, "unsupported expression");
  };
}

function compileCmp(
  e: Extract<Expr, { kind: "cmp" }>,
  scope: string[],
  levels: Map<string, number>,
): Fn {
  const l = compileExpr(e.left, scope, levels);
  const r = compileExpr(e.right, scope, levels);
  if (e.op === "==") return (env) => deepEqual(l(env), r(env));
  if (e.op === "!=") return (env) => !deepEqual(l(env), r(env));
  const op = e.op;
  // Orders two operands as numbers or as classification levels; anything else is an error.
  const order = (a: unknown, b: unknown): [number, number] => {
    if (typeof a === "number" && typeof b === "number") return [a, b];
    if (typeof a === "string" && typeof b === "string") {
      const ia = levels.get(a);
      const ib = levels.get(b);
      if (ia !== undefined && ib !== undefined) return [ia, ib];
      const bad = ia === undefined ? a : b;
      throw fail(
        e,
        `cannot order strings with '${op}': ${show(bad)} is not a classification level`,
      );
    }
    throw fail(e, `cannot compare ${kindOf(a)} with ${kindOf(b)} using '${op}'`);
  };
  switch (op) {
    case "<":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a < b;
        const [x, y] = order(a, b);
        return x < y;
      };
    case "<=":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a <= b;
        const [x, y] = order(a, b);
        return x <= y;
      };
    case ">":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a > b;
        const [x, y] = order(a, b);
        return x > y;
      };
    case ">=":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a >= b;
        const [x, y] = order(a, b);
        return x >= y;
      };
  }
}

function compileArith(
  e: Extract<Expr, { kind: "arith" }>,
  scope: string[],
  levels: Map<string, number>,
): Fn {
  const l = compileExpr(e.left, scope, levels);
  const r = compileExpr(e.right, scope, levels);
  const op = e.op;
  return (env) => {
    const a = l(env);
    const b = r(env);
    if (op === "+" && typeof a === "string" && typeof b === "string") return a + b;
    if (typeof a !== "number" || typeof b !== "number") {
      throw fail(
        e,
        `'${op}' needs numbers${op === "+" ? " or strings" : ""}, found ${kindOf(a)} and ${kindOf(b)}`,
      );
    }
    let v: number;
    switch (op) {
      case "+":
        v = a + b;
        break;
      case "-":
        v = a - b;
        break;
      case "*":
        v = a * b;
        break;
      case "/":
        v = a / b;
        break;
      case "%":
        v = a % b;
        break;
    }
    if (!Number.isFinite(v))
      throw fail(e, `result is not a finite number (${show(a)} ${op} ${show(b)})`);
    return v;
  };
}
