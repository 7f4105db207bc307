// Typed AST of the policy language (docs/policy-language.md, "Grammar").
// Every node carries the position of its first token so errors can point at source.

/** 1-based line and column (columns count UTF-16 code units). */
export interface Pos {
  line: number;
  column: number;
}

export type Literal = string | number | boolean | null;

export type CmpOp = "==" | "!=" | "<" | "<=" | ">" | ">=";
export type ArithOp = "+" | "-" | "*" | "/" | "%";
export type LogicOp = "&&" | "||";
export type MethodName = "contains" | "starts_with" | "ends_with";
export const METHODS: readonly MethodName[] = ["contains", "starts_with", "ends_with"];

export type Expr =
  | { kind: "literal"; value: Literal; pos: Pos }
  | { kind: "ident"; name: string; pos: Pos }
  | { kind: "array"; items: Expr[]; pos: Pos }
  | { kind: "member"; object: Expr; name: string; pos: Pos }
  | { kind: "index"; object: Expr; index: Expr; pos: Pos }
  | { kind: "call"; object: Expr; method: MethodName; args: Expr[]; pos: Pos }
  | { kind: "not"; operand: Expr; pos: Pos }
  | { kind: "neg"; operand: Expr; pos: Pos }
  | { kind: "logic"; op: LogicOp; left: Expr; right: Expr; pos: Pos }
  | { kind: "cmp"; op: CmpOp; left: Expr; right: Expr; pos: Pos }
  | { kind: "arith"; op: ArithOp; left: Expr; right: Expr; pos: Pos }
  | { kind: "quant"; quantifier: "any" | "all"; list: Expr; param: string; body: Expr; pos: Pos }
  | { kind: "len"; operand: Expr; pos: Pos };

/** `NAME` or `NAME(NAME)`; `*` is a wildcard in either place. */
export interface Target {
  name: string;
  resource?: string;
  pos: Pos;
}

/**
 * One item of a `require`: an obligation (`name = literal` or, when targeted, a bare name) or a
 * condition.
 */
export type Requirement =
  | { kind: "obligation"; name: string; value?: Literal; pos: Pos }
  | { kind: "condition"; expr: Expr; pos: Pos };

export type Rule =
  | {
      kind: "allow" | "deny";
      target: Target;
      condition?: Expr;
      comments: string[];
      pos: Pos;
    }
  | {
      kind: "require";
      items: Requirement[];
      target?: Target;
      comments: string[];
      pos: Pos;
    };

export interface Policy {
  name: string;
  rules: Rule[];
  /** Comments before the policy keyword. */
  comments: string[];
  /** Comments after the last rule, before `}`. */
  endComments: string[];
  pos: Pos;
}

export interface PolicyDocument {
  policies: Policy[];
  /** Comments after the last policy. */
  endComments: string[];
}
