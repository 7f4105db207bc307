// Tokenizer. Never throws: malformed input becomes diagnostics and the scan continues,
// so the parser can report several errors at once.
import type { Diagnostic } from "./errors";

export type TokenType = "ident" | "string" | "number" | "punct" | "eof";

export interface Token {
  type: TokenType;
  /** Source text (for punct: the operator itself). */
  text: string;
  /** Decoded value of string and number tokens. */
  value?: string | number;
  line: number;
  column: number;
  /** UTF-16 offset of the first character. */
  offset: number;
}

export interface Comment {
  text: string;
  line: number;
  column: number;
  offset: number;
}

export interface LexResult {
  tokens: Token[];
  comments: Comment[];
  diagnostics: Diagnostic[];
}

const TWO_CHAR = new Set(["==", "!=", "<=", ">=", "&&", "||"]);
const ONE_CHAR = new Set([
  "{",
  "}",
  "(",
  ")",
  "[",
  "]",
  ",",
  ":",
  ".",
  "|",
  "*",
  "=",
  "<",
  ">",
  "!",
  "+",
  "-",
  "/",
  "%",
]);

const isIdentStart = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isIdentPart = (c: number): boolean => isIdentStart(c) || (c >= 48 && c <= 57);
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

// JSON string body: no raw control characters, only JSON escapes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: excluding control characters is the point
const STRING_BODY = /^(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*$/;
// JSON number without sign (unary minus is an operator).
const NUMBER = /(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export function describeToken(t: Token): string {
  if (t.type === "eof") return "end of input";
  const text = t.text.length > 24 ? `${t.text.slice(0, 24)}…` : t.text;
  return t.type === "string" ? `string ${text}` : `'${text}'`;
}

export function lex(source: string, maxErrors: number): LexResult {
  const tokens: Token[] = [];
  const comments: Comment[] = [];
  const diagnostics: Diagnostic[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = source.length;

  const report = (l: number, col: number, message: string, found: string) => {
    if (diagnostics.length < maxErrors) {
      diagnostics.push({ line: l, column: col, message, expected: [], found, phase: "lex" });
    }
  };

  while (i < n) {
    const c = source.charCodeAt(i);
    // Whitespace (newlines included: a condition may span lines).
    if (c === 10) {
      i++;
      line++;
      lineStart = i;
      continue;
    }
    if (c === 32 || c === 9 || c === 13) {
      i++;
      continue;
    }
    const col = i - lineStart + 1;
    const start = i;
    if (c === 47 && source.charCodeAt(i + 1) === 47) {
      let j = i + 2;
      while (j < n && source.charCodeAt(j) !== 10) j++;
      comments.push({ text: source.slice(i, j).trimEnd(), line, column: col, offset: i });
      i = j;
      continue;
    }
    if (c === 47 && source.charCodeAt(i + 1) === 42) {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      if (end < 0) report(line, col, "unterminated block comment: expected '*/'", "end of input");
      else comments.push({ text: source.slice(i, stop), line, column: col, offset: i });
      for (let j = i; j < stop; j++) {
        if (source.charCodeAt(j) === 10) {
          line++;
          lineStart = j + 1;
        }
      }
      i = stop;
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(source.charCodeAt(j))) j++;
      tokens.push({ type: "ident", text: source.slice(i, j), line, column: col, offset: i });
      i = j;
      continue;
    }
    if (isDigit(c)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(source);
      let j = i + (m ? m[0].length : 1);
      // A number running into letters or digits (`1abc`, `007`) is one malformed token.
      let k = j;
      while (k < n && isIdentPart(source.charCodeAt(k))) k++;
      const text = source.slice(i, k);
      if (k !== j || !m) {
        report(line, col, `invalid number: expected a JSON number, found '${text}'`, text);
        j = k;
      } else {
        const value = Number(text);
        if (!Number.isFinite(value)) {
          report(line, col, `number out of range: '${text}'`, text);
        } else {
          tokens.push({ type: "number", text, value, line, column: col, offset: i });
        }
      }
      i = j;
      continue;
    }
    if (c === 34) {
      // Find the closing quote on this line, honouring backslash escapes.
      let j = i + 1;
      while (j < n) {
        const d = source.charCodeAt(j);
        if (d === 92) {
          if (source.charCodeAt(j + 1) === 10) break;
          j += 2;
          continue;
        }
        if (d === 34 || d === 10) break;
        j++;
      }
      if (j >= n || source.charCodeAt(j) !== 34) {
        report(line, col, "unterminated string: expected '\"'", "end of line");
        i = Math.min(j, n);
        continue;
      }
      const body = source.slice(i + 1, j);
      const text = source.slice(start, j + 1);
      const value = STRING_BODY.test(body) ? (JSON.parse(text) as string) : undefined;
      if (value === undefined) {
        report(line, col, "invalid string: expected JSON escapes and no control characters", text);
      } else if (!value.isWellFormed()) {
        // A \uD800-style escape outside a pair: decisions carry policy strings into the audit
        // trail, whose canonical JSON cannot hold one (docs/http-api.md: well-formed Unicode only).
        report(line, col, "invalid string: a lone surrogate escape is not Unicode text", text);
      } else {
        tokens.push({ type: "string", text, value, line, column: col, offset: i });
      }
      i = j + 1;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (TWO_CHAR.has(two)) {
      tokens.push({ type: "punct", text: two, line, column: col, offset: i });
      i += 2;
      continue;
    }
    const one = source[i]!;
    if (ONE_CHAR.has(one)) {
      tokens.push({ type: "punct", text: one, line, column: col, offset: i });
      i++;
      continue;
    }
    // Report the whole code point so surrogate pairs are not split in the message.
    const cp = source.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    const hint = one === "&" ? " (did you mean '&&'?)" : "";
    report(line, col, `unexpected character ${JSON.stringify(ch)}${hint}`, ch);
    i += ch.length;
  }
  tokens.push({ type: "eof", text: "", line, column: i - lineStart + 1, offset: i });
  return { tokens, comments, diagnostics };
}
