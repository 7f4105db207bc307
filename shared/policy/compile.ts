// AST → closures, once per document. No eval/new Function (workerd forbids them).
// Evaluation errors are thrown as EvalFailure and caught per rule by the evaluator.
import type { Expr, Literal, PolicyDocument, Rule, Target } from "./ast";
import { formatExpr, ruleHead } from "./format";

/** Per-evaluation state threaded through compiled closures. */
export interface Env {
  ctx: Record<string, unknown>;
  /** Lambda parameters, one slot per nesting level. */
  locals: unknown[];
  /** Work units left (see `charge`); below zero the evaluation is over budget. */
  budget: number;
  /** The meter looks at the budget and the clock only once `budget` drops below this. */
  checkAt: number;
  /** Monotonic milliseconds; null: no time limit. */
  clock: (() => number) | null;
  /** The clock() value after which the evaluation fails; NaN until the clock is first read. */
  deadline: number;
  /** Set once the time limit ended the evaluation: such a result depends on load, not input. */
  timedOut: boolean;
  limits: EvaluationLimits;
}

/** What one evaluation may spend. */
export interface EvaluationLimits {
  /**
   * Work units: one per value visited (lambda iteration, array element, structure node
   * compared) and one per CHARS_PER_UNIT string code units built, scanned or compared.
   */
  maxWork: number;
  /** Wall-clock backstop, in milliseconds of `clock`, from the first CLOCK_EVERY units on. */
  maxMs: number;
  /** Monotonic milliseconds (the caller's; shared/ reads no clock of its own). Null: no time limit. */
  clock: (() => number) | null;
}

/** String code units per work unit: scanning text costs far less per unit than visiting a value. */
export const CHARS_PER_UNIT = 4;
/** Work units between two looks at the clock (the clock is never read by cheap evaluations). */
const CLOCK_EVERY = 4096;

export function newEnv(ctx: Record<string, unknown>, limits: EvaluationLimits): Env {
  const clock = limits.clock;
  return {
    ctx,
    locals: [],
    budget: limits.maxWork,
    checkAt: clock ? limits.maxWork - CLOCK_EVERY : 0,
    clock,
    deadline: Number.NaN,
    timedOut: false,
    limits,
  };
}

/**
 * Charges `units` of work to the evaluation before it is done, so an operation over budget
 * never runs. Exhaustion (and, as a backstop, the time limit) is an evaluation error.
 */
function charge(env: Env, e: Expr, units: number): void {
  env.budget -= units;
  if (env.budget < env.checkAt) meter(env, e);
}

function meter(env: Env, e: Expr): void {
  const timeLimit = () => fail(e, `evaluation time limit exceeded (${env.limits.maxMs} ms)`);
  if (env.timedOut) throw timeLimit();
  if (env.budget < 0) {
    throw fail(e, `evaluation budget exceeded (${env.limits.maxWork} work units)`);
  }
  if (!env.clock) return;
  const now = env.clock();
  // The clock starts at the first look, CLOCK_EVERY units in: cheap evaluations never read it.
  if (Number.isNaN(env.deadline)) env.deadline = now + env.limits.maxMs;
  else if (now > env.deadline) {
    env.timedOut = true;
    env.checkAt = Number.POSITIVE_INFINITY; // every later charge fails at once
    throw timeLimit();
  }
  env.checkAt = Math.max(0, env.budget - CLOCK_EVERY);
}

const textCost = (codeUnits: number): number => 1 + Math.floor(codeUnits / CHARS_PER_UNIT);

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
  // A message costs little whatever it names: long strings are clipped first, structures
  // are named by kind (serialising one could cost as much as the request).
  if (typeof v === "string" && v.length > 40) v = v.slice(0, 40);
  if (v !== null && typeof v === "object") return kindOf(v);
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = kindOf(v);
  }
  return clip(s, 40);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Equality for `==`, `!=` and array `contains()`. Both operands must be of one kind (null,
 * boolean, number, string, array, object): a mismatch is an evaluation error, as for `<`, so
 * `role == "guest"` cannot be escaped by sending `["guest"]`. Structures of different shape
 * (length, key set) are unequal; same-shaped ones are compared at every position, so a
 * mismatch anywhere is an error whatever the order of an object's keys. Charges its work.
 */
function equal(env: Env, e: Expr, how: string, a: unknown, b: unknown): boolean {
  if (typeof a === "string" && typeof b === "string") {
    charge(env, e, a.length === b.length ? textCost(a.length) : 1);
    return a === b;
  }
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka !== kb) throw fail(e, `cannot compare ${ka} with ${kb} using ${how}`);
  charge(env, e, 1);
  if (a === b || (ka !== "array" && ka !== "object")) return a === b;
  if (ka === "array") {
    const x = a as unknown[];
    const y = b as unknown[];
    if (x.length !== y.length) return false;
    let same = true;
    for (let i = 0; i < x.length; i++) if (!equal(env, e, how, x[i], y[i])) same = false;
    return same;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  const count = Object.keys(y).length;
  // Listing keys has no cheaper way: charged just after, so the overrun is one listing.
  charge(env, e, keys.length + count);
  if (keys.length !== count) return false;
  for (const k of keys) if (!hasOwn.call(y, k)) return false;
  let same = true;
  for (const k of keys) if (!equal(env, e, how, x[k], y[k])) same = false;
  return same;
}

const isNullLiteral = (e: Expr): boolean => e.kind === "literal" && e.value === null;

function bool(e: Expr, v: unknown, what: string): boolean {
  if (v === true || v === false) return v;
  throw fail(e, `${what} must be a boolean, found ${kindOf(v)}`);
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Code points of `s` (a lone surrogate counts as one). */
function codePoints(s: string): number {
  // The regular expression scans natively, and flattens a concatenation once, not per read.
  if (!SURROGATE.test(s)) return s.length;
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
      return (env) => {
        charge(env, e, items.length);
        return items.map((f) => f(env));
      };
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
          charge(env, e, textCost(i.length));
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
        case "contains": {
          // `xs.contains(v)` is `any(xs, |x| x == v)`, with the same kind rules; a literal
          // `null` argument is a null test, as in `x == null`.
          const nullTest = isNullLiteral(e.args[0]!);
          return (env) => {
            const o = obj(env);
            const a = arg(env);
            if (Array.isArray(o)) {
              if (nullTest) {
                charge(env, e, 1 + o.length);
                return o.includes(null);
              }
              for (const x of o) if (equal(env, e, "contains()", x, a)) return true;
              return false;
            }
            if (typeof o === "string") {
              if (typeof a !== "string")
                throw fail(e, `substring must be a string, found ${kindOf(a)}`);
              charge(env, e, textCost(o.length + a.length));
              return o.includes(a);
            }
            throw fail(e, `contains() needs an array or a string, found ${kindOf(o)}`);
          };
        }
        case "starts_with":
        case "ends_with": {
          const starts = e.method === "starts_with";
          return (env) => {
            const o = obj(env);
            const a = arg(env);
            if (typeof o !== "string" || typeof a !== "string") {
              throw fail(e, `${e.method}() needs strings, found ${kindOf(o)} and ${kindOf(a)}`);
            }
            charge(env, e, textCost(a.length));
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
          charge(env, e, 1);
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
        if (typeof v === "string") {
          charge(env, e, textCost(v.length));
          return codePoints(v);
        }
        if (Array.isArray(v)) return v.length;
        if (isObject(v)) {
          const n = Object.keys(v).length;
          charge(env, e, 1 + n);
          return n;
        }
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
  if (e.op === "==" || e.op === "!=") {
    const ne = e.op === "!=";
    // `x == null` / `x != null` is a null test and accepts any kind of x; elsewhere null is
    // a kind of its own, so a null where a string is expected is an error, like an absent
    // attribute.
    if (isNullLiteral(e.left) || isNullLiteral(e.right)) {
      const other = isNullLiteral(e.left) ? r : l;
      return (env) => (other(env) === null) !== ne;
    }
    const how = `'${e.op}'`;
    return (env) => equal(env, e, how, l(env), r(env)) !== ne;
  }
  const op = e.op;
  // Orders two operands as numbers or as classification levels; anything else is an error.
  const order = (env: Env, a: unknown, b: unknown): [number, number] => {
    if (typeof a === "number" && typeof b === "number") return [a, b];
    if (typeof a === "string" && typeof b === "string") {
      // A Map lookup hashes the string: linear in its length when it was built at run time.
      charge(env, e, textCost(a.length + b.length));
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
        const [x, y] = order(env, a, b);
        return x < y;
      };
    case "<=":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a <= b;
        const [x, y] = order(env, a, b);
        return x <= y;
      };
    case ">":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a > b;
        const [x, y] = order(env, a, b);
        return x > y;
      };
    case ">=":
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === "number" && typeof b === "number") return a >= b;
        const [x, y] = order(env, a, b);
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
    if (op === "+" && typeof a === "string" && typeof b === "string") {
      // Charged by the result's length, before it is built.
      charge(env, e, textCost(a.length + b.length));
      return a + b;
    }
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
