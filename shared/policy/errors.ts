// The one error type the parser and compiler throw: a list of located diagnostics.

export interface Diagnostic {
  line: number;
  column: number;
  /** Human-readable, names what was expected and what was found. */
  message: string;
  /** What the parser could have accepted here (empty for semantic errors). */
  expected: string[];
  /** The token or text that was found. */
  found: string;
  phase: "limit" | "lex" | "parse" | "compile";
}

export class PolicyError extends Error {
  override readonly name = "PolicyError";
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[]) {
    const first = diagnostics[0];
    super(
      first
        ? `${first.line}:${first.column}: ${first.message}${diagnostics.length > 1 ? ` (and ${diagnostics.length - 1} more)` : ""}`
        : "invalid policy document",
    );
    this.diagnostics = diagnostics;
  }

  /** The `errors` array of the HTTP API (`[{line, column, message}]`). */
  toJSON(): { line: number; column: number; message: string }[] {
    return this.diagnostics.map(({ line, column, message }) => ({ line, column, message }));
  }
}

/** Limits that bound the cost of a hostile document (size, nesting, rule count). */
export interface PolicyLimits {
  /** UTF-8 bytes of source. */
  maxSourceBytes: number;
  /** Expression nesting (AST height and parser recursion). */
  maxDepth: number;
  /** Rules per document. */
  maxRules: number;
  /** Policy blocks per document. */
  maxPolicies: number;
  /** Diagnostics reported before the parser gives up. */
  maxErrors: number;
}

export const DEFAULT_LIMITS: PolicyLimits = {
  maxSourceBytes: 1024 * 1024,
  maxDepth: 64,
  maxRules: 10_000,
  maxPolicies: 10_000,
  maxErrors: 20,
};
