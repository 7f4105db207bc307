// Recursive-descent parser for docs/policy-language.md. Reports several errors at once by
// resynchronising at the next rule or policy, enforces the document limits, and throws
// nothing but PolicyError.
import {
  type ArithOp,
  type CmpOp,
  type Expr,
  type Literal,
  METHODS,
  type MethodName,
  type Policy,
  type PolicyDocument,
  type Pos,
  type Requirement,
  type Rule,
  type Target,
} from "./ast";
import { DEFAULT_LIMITS, type Diagnostic, PolicyError, type PolicyLimits } from "./errors";
import { type Comment, describeToken, lex, type Token } from "./lexer";

export const KEYWORDS: ReadonlySet<string> = new Set([
  "policy",
  "allow",
  "deny",
  "require",
  "if",
  "for",
  "true",
  "false",
  "null",
  "any",
  "all",
  "len",
]);

const RULE_KEYWORDS = new Set(["allow", "deny", "require"]);
const CMP_OPS = new Set(["==", "!=", "<", "<=", ">", ">="]);

/** Thrown inside the parser to unwind to the nearest recovery point. */
class Recover {}
/** Thrown when the error budget or a hard limit is exhausted. */
class Stop {}

export function parse(source: string, limits: Partial<PolicyLimits> = {}): PolicyDocument {
  const lim: PolicyLimits = { ...DEFAULT_LIMITS, ...limits };
  if (typeof source !== "string") {
    throw new PolicyError([limitDiag("document must be a string", "non-string")]);
  }
  // UTF-8 is never shorter than UTF-16 code units, so the cheap check goes first.
  if (
    source.length > lim.maxSourceBytes ||
    new TextEncoder().encode(source).length > lim.maxSourceBytes
  ) {
    throw new PolicyError([
      limitDiag(`document too large: limit is ${lim.maxSourceBytes} bytes`, "oversized document"),
    ]);
  }
  return new Parser(source, lim).parseDocument();
}

function limitDiag(message: string, found: string): Diagnostic {
  return { line: 1, column: 1, message, expected: [], found, phase: "limit" };
}

class Parser {
  private readonly tokens: Token[];
  private readonly comments: Comment[];
  private readonly diagnostics: Diagnostic[];
  private p = 0;
  private c = 0;
  private depth = 0;
  private ruleCount = 0;
  private readonly heights = new WeakMap<Expr, number>();

  constructor(
    source: string,
    private readonly lim: PolicyLimits,
  ) {
    const lexed = lex(source, lim.maxErrors);
    this.tokens = lexed.tokens;
    this.comments = lexed.comments;
    this.diagnostics = lexed.diagnostics;
  }

  parseDocument(): PolicyDocument {
    const policies: Policy[] = [];
    const seen = new Map<string, Pos>();
    try {
      if (this.diagnostics.length >= this.lim.maxErrors) throw new Stop();
      while (this.peek().type !== "eof") {
        if (!this.isWord("policy")) {
          this.error(["'policy'"]);
          this.p++;
          while (this.peek().type !== "eof" && !this.isWord("policy")) this.p++;
          continue;
        }
        const policy = this.parsePolicy();
        if (!policy) continue;
        const prev = seen.get(policy.name);
        if (prev) {
          this.semantic(
            policy.pos,
            `duplicate policy name '${policy.name}' (first defined at line ${prev.line}, column ${prev.column})`,
            policy.name,
          );
        } else seen.set(policy.name, policy.pos);
        policies.push(policy);
        if (policies.length > this.lim.maxPolicies) {
          this.semantic(
            policy.pos,
            `too many policies: limit is ${this.lim.maxPolicies}`,
            policy.name,
            "limit",
          );
          throw new Stop();
        }
      }
    } catch (e) {
      if (!(e instanceof Stop)) throw e;
    }
    if (this.diagnostics.length > 0) {
      this.diagnostics.sort((a, b) => a.line - b.line || a.column - b.column);
      throw new PolicyError(this.diagnostics);
    }
    return { policies, endComments: this.takeComments(Number.POSITIVE_INFINITY) };
  }

  // ---- policies and rules -------------------------------------------------

  private parsePolicy(): Policy | null {
    const kw = this.next();
    const comments = this.takeComments(kw.offset);
    const pos = at(kw);
    const nameTok = this.peek();
    if (nameTok.type !== "ident" || KEYWORDS.has(nameTok.text)) {
      this.error(["a policy name"]);
      this.skipToPolicy();
      return null;
    }
    this.p++;
    if (!this.isPunct("{")) {
      this.error(["'{'"]);
      this.skipToPolicy();
      return null;
    }
    this.p++;
    const rules: Rule[] = [];
    for (;;) {
      const t = this.peek();
      if (this.isPunct("}")) {
        const endComments = this.takeComments(t.offset);
        this.p++;
        return { name: nameTok.text, rules, comments, endComments, pos };
      }
      if (t.type === "eof" || this.isPolicyStart()) {
        this.error(["'allow'", "'deny'", "'require'", "'}'"]);
        return { name: nameTok.text, rules, comments, endComments: [], pos };
      }
      if (t.type !== "ident" || !RULE_KEYWORDS.has(t.text)) {
        this.error(["'allow'", "'deny'", "'require'", "'}'"]);
        this.p++;
        this.skipToRule();
        continue;
      }
      try {
        const rule = this.parseRule();
        rules.push(rule);
        if (++this.ruleCount > this.lim.maxRules) {
          this.semantic(rule.pos, `too many rules: limit is ${this.lim.maxRules}`, t.text, "limit");
          throw new Stop();
        }
      } catch (e) {
        if (!(e instanceof Recover)) throw e;
        this.skipToRule();
      }
    }
  }

  private parseRule(): Rule {
    const kw = this.next();
    const comments = this.takeComments(kw.offset);
    const pos = at(kw);
    this.expectPunct(":");
    let rule: Rule;
    if (kw.text === "require") {
      const items: Requirement[] = [];
      if (this.isPunct("[")) {
        this.p++;
        for (;;) {
          items.push(this.parseRequirement());
          if (this.isPunct(",")) {
            this.p++;
            if (this.isPunct("]")) break;
            continue;
          }
          if (this.isPunct("]")) break;
          this.error(["','", "']'"]);
          throw new Recover();
        }
        this.p++;
      } else {
        items.push(this.parseRequirement());
      }
      let target: Target | undefined;
      if (this.isWord("for")) {
        this.p++;
        target = this.parseTarget();
        // In a targeted require a bare name is an obligation (e.g. `supervisor_approval`).
        for (let i = 0; i < items.length; i++) {
          const it = items[i]!;
          if (it.kind === "condition" && it.expr.kind === "ident") {
            items[i] = { kind: "obligation", name: it.expr.name, pos: it.pos };
          }
        }
      }
      rule = target
        ? { kind: "require", items, target, comments, pos }
        : { kind: "require", items, comments, pos };
    } else {
      const target = this.parseTarget();
      let condition: Expr | undefined;
      if (this.isWord("if")) {
        this.p++;
        condition = this.parseExpr();
      }
      const kind = kw.text as "allow" | "deny";
      rule = condition
        ? { kind, target, condition, comments, pos }
        : { kind, target, comments, pos };
    }
    this.expectRuleEnd();
    // Comments inside the rule are hoisted above it so the formatter never drops them.
    const last = this.tokens[this.p - 1];
    if (last) rule.comments.push(...this.takeComments(last.offset));
    return rule;
  }

  private expectRuleEnd(): void {
    const t = this.peek();
    if (t.type === "eof" || this.isPunct("}") || this.isRuleStart() || this.isPolicyStart()) return;
    if (this.isPunct("=")) {
      this.semantic(
        at(t),
        "assignment '=' is only allowed for obligations in a require (did you mean '=='?)",
        "'='",
      );
      throw new Recover();
    }
    this.error(["an operator", "'allow'", "'deny'", "'require'", "'}'"]);
    throw new Recover();
  }

  private parseRequirement(): Requirement {
    const t = this.peek();
    const n1 = this.peek(1);
    if (t.type === "ident" && !KEYWORDS.has(t.text) && n1.type === "punct" && n1.text === "=") {
      this.p += 2;
      return { kind: "obligation", name: t.text, value: this.parseLiteral(), pos: at(t) };
    }
    const expr = this.parseExpr();
    if (this.isPunct("=")) {
      this.semantic(
        at(this.peek()),
        "an obligation name must be a plain identifier (name = literal)",
        "'='",
      );
      throw new Recover();
    }
    return { kind: "condition", expr, pos: at(t) };
  }

  private parseLiteral(): Literal {
    const t = this.peek();
    if (t.type === "string" || t.type === "number") {
      this.p++;
      return t.value as Literal;
    }
    if (t.type === "ident" && (t.text === "true" || t.text === "false" || t.text === "null")) {
      this.p++;
      return t.text === "null" ? null : t.text === "true";
    }
    this.error(["a string", "a number", "'true'", "'false'", "'null'"]);
    throw new Recover();
  }

  private parseTarget(): Target {
    const pos = at(this.peek());
    const name = this.parseName();
    if (this.isPunct("(")) {
      this.p++;
      const resource = this.parseName();
      this.expectPunct(")");
      return { name, resource, pos };
    }
    return { name, pos };
  }

  private parseName(): string {
    const t = this.peek();
    if (this.isPunct("*") || (t.type === "ident" && !KEYWORDS.has(t.text))) {
      this.p++;
      return t.text;
    }
    this.error(["a name", "'*'"]);
    throw new Recover();
  }

  // ---- expressions ----------------------------------------------------------

  parseExpr(): Expr {
    if (++this.depth > this.lim.maxDepth) this.tooDeep();
    try {
      return this.parseOr();
    } finally {
      this.depth--;
    }
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isPunct("||")) {
      const t = this.next();
      left = this.node({ kind: "logic", op: "||", left, right: this.parseAnd(), pos: at(t) });
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.isPunct("&&")) {
      const t = this.next();
      left = this.node({ kind: "logic", op: "&&", left, right: this.parseNot(), pos: at(t) });
    }
    return left;
  }

  private parseNot(): Expr {
    if (this.isPunct("!")) {
      const t = this.next();
      if (++this.depth > this.lim.maxDepth) this.tooDeep();
      try {
        return this.node({ kind: "not", operand: this.parseNot(), pos: at(t) });
      } finally {
        this.depth--;
      }
    }
    return this.parseCmp();
  }

  private parseCmp(): Expr {
    const left = this.parseSum();
    const t = this.peek();
    if (t.type !== "punct" || !CMP_OPS.has(t.text)) return left;
    this.p++;
    const e = this.node({
      kind: "cmp",
      op: t.text as CmpOp,
      left,
      right: this.parseSum(),
      pos: at(t),
    });
    const u = this.peek();
    if (u.type === "punct" && CMP_OPS.has(u.text)) {
      this.semantic(at(u), "comparisons do not chain: use '&&' or parentheses", `'${u.text}'`);
      throw new Recover();
    }
    return e;
  }

  private parseSum(): Expr {
    let left = this.parseProd();
    while (this.isPunct("+") || this.isPunct("-")) {
      const t = this.next();
      const right = this.parseProd();
      left = this.node({ kind: "arith", op: t.text as ArithOp, left, right, pos: at(t) });
    }
    return left;
  }

  private parseProd(): Expr {
    let left = this.parseUnary();
    while (this.isPunct("*") || this.isPunct("/") || this.isPunct("%")) {
      const t = this.next();
      const right = this.parseUnary();
      left = this.node({ kind: "arith", op: t.text as ArithOp, left, right, pos: at(t) });
    }
    return left;
  }

  private parseUnary(): Expr {
    if (this.isPunct("-")) {
      const t = this.next();
      if (++this.depth > this.lim.maxDepth) this.tooDeep();
      try {
        return this.node({ kind: "neg", operand: this.parseUnary(), pos: at(t) });
      } finally {
        this.depth--;
      }
    }
    return this.parsePostfix();
  }

  private parsePostfix(): Expr {
    let e = this.parsePrimary();
    for (;;) {
      if (this.isPunct(".")) {
        const dot = this.next();
        const nameTok = this.peek();
        if (nameTok.type !== "ident") {
          this.error(["an attribute or method name"]);
          throw new Recover();
        }
        this.p++;
        if (this.isPunct("(")) {
          if (!(METHODS as readonly string[]).includes(nameTok.text)) {
            this.semantic(
              at(nameTok),
              `unknown method '${nameTok.text}': expected one of ${METHODS.join(", ")}`,
              `'${nameTok.text}'`,
            );
            throw new Recover();
          }
          this.p++;
          const args = this.parseArgs(")");
          if (args.length !== 1) {
            this.semantic(
              at(nameTok),
              `method '${nameTok.text}' takes exactly 1 argument, found ${args.length}`,
              `${args.length} arguments`,
            );
            throw new Recover();
          }
          const method = nameTok.text as MethodName;
          e = this.node({ kind: "call", object: e, method, args, pos: at(dot) });
        } else {
          e = this.node({ kind: "member", object: e, name: nameTok.text, pos: at(dot) });
        }
      } else if (this.isPunct("[")) {
        const t = this.next();
        const index = this.parseExpr();
        this.expectPunct("]");
        e = this.node({ kind: "index", object: e, index, pos: at(t) });
      } else {
        return e;
      }
    }
  }

  /** Comma-separated expressions up to `close` (consumed). */
  private parseArgs(close: string): Expr[] {
    const args: Expr[] = [];
    if (this.isPunct(close)) {
      this.p++;
      return args;
    }
    for (;;) {
      args.push(this.parseExpr());
      if (this.isPunct(",")) {
        this.p++;
        continue;
      }
      this.expectPunct(close);
      return args;
    }
  }

  private parsePrimary(): Expr {
    const t = this.peek();
    const pos = at(t);
    if (t.type === "number" || t.type === "string") {
      this.p++;
      return { kind: "literal", value: t.value as Literal, pos };
    }
    if (this.isPunct("(")) {
      this.p++;
      const e = this.parseExpr();
      this.expectPunct(")");
      return e;
    }
    if (this.isPunct("[")) {
      this.p++;
      return this.node({ kind: "array", items: this.parseArgs("]"), pos });
    }
    if (t.type !== "ident") {
      this.error(["an expression"]);
      throw new Recover();
    }
    switch (t.text) {
      case "true":
      case "false":
        this.p++;
        return { kind: "literal", value: t.text === "true", pos };
      case "null":
        this.p++;
        return { kind: "literal", value: null, pos };
      case "len": {
        this.p++;
        this.expectPunct("(");
        const operand = this.parseExpr();
        this.expectPunct(")");
        return this.node({ kind: "len", operand, pos });
      }
      case "any":
      case "all": {
        this.p++;
        this.expectPunct("(");
        const list = this.parseExpr();
        this.expectPunct(",");
        if (!this.isPunct("|")) {
          const found = this.peek();
          this.semantic(
            at(found),
            `${t.text}() takes a lambda as its second argument: expected '|name| expression', found ${describeToken(found)}`,
            describeToken(found),
          );
          throw new Recover();
        }
        this.p++;
        const param = this.peek();
        if (param.type !== "ident" || KEYWORDS.has(param.text)) {
          this.error(["a lambda parameter name"]);
          throw new Recover();
        }
        this.p++;
        this.expectPunct("|");
        const body = this.parseExpr();
        this.expectPunct(")");
        return this.node({
          kind: "quant",
          quantifier: t.text,
          list,
          param: param.text,
          body,
          pos,
        });
      }
    }
    if (KEYWORDS.has(t.text)) {
      this.error(["an expression"]);
      throw new Recover();
    }
    this.p++;
    if (this.isPunct("(")) {
      this.semantic(
        pos,
        `unknown function '${t.text}': expected one of any, all, len or a method call x.${METHODS[0]}(...)`,
        `'${t.text}'`,
      );
      throw new Recover();
    }
    return { kind: "ident", name: t.text, pos };
  }

  // ---- helpers --------------------------------------------------------------

  /** Records the node's height and enforces the nesting limit on the AST itself. */
  private node(e: Expr): Expr {
    let h = 0;
    for (const child of children(e)) h = Math.max(h, this.heights.get(child) ?? 1);
    this.heights.set(e, h + 1);
    if (h + 1 > this.lim.maxDepth) this.tooDeep(e.pos);
    return e;
  }

  private tooDeep(pos: Pos = at(this.peek())): never {
    this.semantic(
      pos,
      `expression nested too deeply: limit is ${this.lim.maxDepth}`,
      "deep nesting",
      "limit",
    );
    // Resynchronising inside a pathological expression is pointless; stop here.
    throw new Stop();
  }

  private peek(k = 0): Token {
    return this.tokens[Math.min(this.p + k, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (this.p < this.tokens.length - 1) this.p++;
    return t;
  }

  private isPunct(text: string): boolean {
    const t = this.peek();
    return t.type === "punct" && t.text === text;
  }

  private isWord(text: string): boolean {
    const t = this.peek();
    return t.type === "ident" && t.text === text;
  }

  private isRuleStart(): boolean {
    const t = this.peek();
    const n = this.peek(1);
    return t.type === "ident" && RULE_KEYWORDS.has(t.text) && n.type === "punct" && n.text === ":";
  }

  private isPolicyStart(): boolean {
    const n = this.peek(1);
    return this.isWord("policy") && n.type === "ident";
  }

  private expectPunct(text: string): void {
    if (this.isPunct(text)) {
      this.p++;
      return;
    }
    this.error([`'${text}'`]);
    throw new Recover();
  }

  private skipToRule(): void {
    for (;;) {
      const t = this.peek();
      if (t.type === "eof" || this.isPunct("}") || this.isRuleStart() || this.isPolicyStart())
        return;
      this.p++;
    }
  }

  private skipToPolicy(): void {
    while (this.peek().type !== "eof" && !this.isPolicyStart()) this.p++;
  }

  private error(expected: string[]): void {
    const t = this.peek();
    const found = describeToken(t);
    const list =
      expected.length <= 1
        ? (expected[0] ?? "")
        : `${expected.slice(0, -1).join(", ")} or ${expected[expected.length - 1]}`;
    this.push({
      line: t.line,
      column: t.column,
      message: `expected ${list}, found ${found}`,
      expected,
      found,
      phase: "parse",
    });
  }

  private semantic(
    pos: Pos,
    message: string,
    found: string,
    phase: "compile" | "limit" = "compile",
  ): void {
    this.push({ line: pos.line, column: pos.column, message, expected: [], found, phase });
  }

  private push(d: Diagnostic): void {
    const last = this.diagnostics[this.diagnostics.length - 1];
    // One diagnostic per position: recovery can otherwise repeat the same complaint.
    if (last && last.line === d.line && last.column === d.column) return;
    this.diagnostics.push(d);
    if (this.diagnostics.length >= this.lim.maxErrors) throw new Stop();
  }

  /** Comments not yet attached that start before `offset`. */
  private takeComments(offset: number): string[] {
    const out: string[] = [];
    while (this.c < this.comments.length && this.comments[this.c]!.offset < offset) {
      out.push(this.comments[this.c]!.text);
      this.c++;
    }
    return out;
  }
}

const at = (t: { line: number; column: number }): Pos => ({ line: t.line, column: t.column });

export function children(e: Expr): Expr[] {
  switch (e.kind) {
    case "literal":
    case "ident":
      return [];
    case "array":
      return e.items;
    case "member":
      return [e.object];
    case "index":
      return [e.object, e.index];
    case "call":
      return [e.object, ...e.args];
    case "not":
    case "neg":
    case "len":
      return [e.operand];
    case "logic":
    case "cmp":
    case "arith":
      return [e.left, e.right];
    case "quant":
      return [e.list, e.body];
  }
}
