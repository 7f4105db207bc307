// Parser: typed AST with positions, located errors (several at once), compile errors, limits.
import { describe, expect, it } from "vitest";
import { type Diagnostic, PolicyError, parse } from "../../shared/policy";

function errorsOf(src: string, limits = {}): Diagnostic[] {
  try {
    parse(src, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return (e as PolicyError).diagnostics;
  }
  throw new Error("expected a PolicyError");
}

describe("AST", () => {
  it("records positions and precedence", () => {
    const doc = parse(
      'policy p {\n  allow: read(x) if a.b + 2 * 3 >= 4 || !c && d["k"].contains("v")\n}',
    );
    const rule = doc.policies[0]!.rules[0]!;
    expect(rule.pos).toEqual({ line: 2, column: 3 });
    if (rule.kind !== "allow") throw new Error("allow expected");
    expect(rule.target).toEqual({ name: "read", resource: "x", pos: { line: 2, column: 10 } });
    const c = rule.condition!;
    expect(c.kind).toBe("logic");
    if (c.kind !== "logic") return;
    expect(c.op).toBe("||");
    expect(c.left.kind).toBe("cmp");
    expect(c.right.kind).toBe("logic");
    if (c.left.kind !== "cmp") return;
    // + binds looser than *
    expect(c.left.left.kind === "arith" && c.left.left.op).toBe("+");
  });

  it("reads obligations, conditions and targeted bare names in require", () => {
    const doc = parse(`policy p {
      require: [ a.b, c = "x", n = 3, t = true, z = null, ]
      require: supervisor_approval for big
      require: [x.ok, level = "high"] for op(res)
    }`);
    const [r1, r2, r3] = doc.policies[0]!.rules;
    expect(
      r1?.kind === "require" &&
        r1.items.map((i) => (i.kind === "obligation" ? [i.name, i.value] : i.kind)),
    ).toEqual(["condition", ["c", "x"], ["n", 3], ["t", true], ["z", null]]);
    expect(r2?.kind === "require" && r2.items[0]).toMatchObject({
      kind: "obligation",
      name: "supervisor_approval",
    });
    expect(r2?.kind === "require" && r2.target?.name).toBe("big");
    expect(r3?.kind === "require" && r3.target).toMatchObject({ name: "op", resource: "res" });
  });

  it("accepts comments, wildcards, lambdas, len, string escapes and multi-line conditions", () => {
    const doc = parse(`// leading
      policy p { /* block
      comment */
        allow: *(*) if
          all(xs, |x| len(x.name) > 0 && x.name.starts_with("\\u00e9\\n"))
        deny: * if any([1, 2], |n| n % 2 == 0) // trailing
      }`);
    expect(doc.policies[0]!.rules).toHaveLength(2);
    expect(doc.policies[0]!.comments).toEqual(["// leading"]);
  });

  it("empty documents and empty policies are fine", () => {
    expect(parse("").policies).toEqual([]);
    expect(parse("policy empty {}").policies[0]!.rules).toEqual([]);
  });
});

describe("errors", () => {
  it("name line, column, what was expected and what was found", () => {
    const [d] = errorsOf("policy p {\n  allow: read(x) if (a &&\n}");
    expect(d).toMatchObject({ line: 3, column: 1, found: "'}'" });
    expect(d!.message).toBe("expected an expression, found '}'");
    expect(d!.expected).toEqual(["an expression"]);
  });

  it("reports several errors at once by recovering at the next rule", () => {
    const ds = errorsOf(`policy p {
  allow: read( if a
  deny: x if b ==
  allow: ok if c
  deny: y if d.e(1)
}`);
    expect(ds.map((d) => d.line)).toEqual([2, 4, 5]);
    expect(ds[0]!.message).toMatch(/expected a name or '\*', found 'if'/);
    expect(ds[1]!.message).toMatch(/expected an expression, found 'allow'/);
    expect(ds[2]!.message).toMatch(/unknown method 'e'/);
  });

  it("recovers across policies", () => {
    const ds = errorsOf("policy a { allow: }\npolicy b { deny: x if }\npolicy c { allow: y }");
    expect(ds.map((d) => [d.line, d.column])).toEqual([
      [1, 19],
      [2, 23],
    ]);
  });

  it("lex errors are located too", () => {
    const ds = errorsOf(
      'policy p {\n  allow: x if a & b\n  deny: y if "unterminated\n  deny: z if 007 == 1 \n}',
    );
    expect(ds.some((d) => d.line === 2 && d.message.includes("did you mean '&&'"))).toBe(true);
    expect(ds.some((d) => d.line === 3 && d.message.startsWith("unterminated string"))).toBe(true);
    expect(ds.some((d) => d.line === 4 && d.message.startsWith("invalid number"))).toBe(true);
  });

  it("rejects bad string escapes and raw control characters", () => {
    expect(errorsOf('policy p { allow: x if a == "\\q" }')[0]!.message).toMatch(/invalid string/);
    expect(errorsOf('policy p { allow: x if a == "\t" }')[0]!.message).toMatch(/invalid string/);
  });

  it("comparisons do not chain", () => {
    expect(errorsOf("policy p { allow: x if a < b < c }")[0]!.message).toMatch(/do not chain/);
  });

  it("keywords are not identifiers", () => {
    expect(errorsOf("policy p { allow: x if policy }")[0]!.message).toBe(
      "expected an expression, found 'policy'",
    );
    expect(errorsOf("policy if { }")[0]!.message).toBe("expected a policy name, found 'if'");
  });

  it("a top-level non-policy is rejected", () => {
    expect(errorsOf("allow: x")[0]).toMatchObject({
      line: 1,
      column: 1,
      message: "expected 'policy', found 'allow'",
    });
  });
});

describe("compile errors", () => {
  it("unknown method names", () => {
    const [d] = errorsOf('policy p { allow: x if a.matches("x") }');
    expect(d).toMatchObject({ line: 1, column: 26, phase: "compile" });
    expect(d!.message).toBe(
      "unknown method 'matches': expected one of contains, starts_with, ends_with",
    );
  });

  it("unknown functions and wrong arity", () => {
    expect(errorsOf("policy p { allow: x if lower(a) }")[0]!.message).toMatch(
      /unknown function 'lower'/,
    );
    expect(errorsOf("policy p { allow: x if a.contains(b, c) }")[0]!.message).toMatch(
      /exactly 1 argument/,
    );
  });

  it("any/all over a non-lambda", () => {
    const [d] = errorsOf("policy p { allow: x if any(xs, flag) }");
    expect(d!.message).toBe(
      "any() takes a lambda as its second argument: expected '|name| expression', found 'flag'",
    );
    expect(errorsOf("policy p { allow: x if all(xs) }")[0]!.message).toBe(
      "expected ',', found ')'",
    );
  });

  it("duplicate policy names in one document", () => {
    const [d] = errorsOf("policy a {}\npolicy b {}\npolicy a {}");
    expect(d).toMatchObject({ line: 3, column: 1, phase: "compile" });
    expect(d!.message).toBe("duplicate policy name 'a' (first defined at line 1, column 1)");
  });

  it("assignments outside require", () => {
    const [d] = errorsOf("policy p { allow: x if level = 3 }");
    expect(d).toMatchObject({ line: 1, column: 30 });
    expect(d!.message).toMatch(/only allowed for obligations in a require/);
    expect(errorsOf("policy p { require: a.b = 1 }")[0]!.message).toMatch(/plain identifier/);
  });
});

describe("limits", () => {
  it("document size", () => {
    const [d] = errorsOf(`policy p {}${" ".repeat(100)}`, { maxSourceBytes: 64 });
    expect(d).toMatchObject({ phase: "limit", line: 1, column: 1 });
    expect(d!.message).toMatch(/too large/);
    // Multi-byte characters count in UTF-8 bytes.
    expect(errorsOf(`// ${"é".repeat(40)}`, { maxSourceBytes: 64 })[0]!.phase).toBe("limit");
  });

  it("nesting depth, through parentheses, operators, postfix chains and lambdas", () => {
    const deep = [
      `policy p { allow: x if ${"(".repeat(5000)}a${")".repeat(5000)} }`,
      `policy p { allow: x if ${"!".repeat(5000)}a }`,
      `policy p { allow: x if ${"-".repeat(5000)}a > 1 }`,
      `policy p { allow: x if a${".b".repeat(5000)} }`,
      `policy p { allow: x if a${" + a".repeat(5000)} > 1 }`,
      `policy p { allow: x if ${"[".repeat(5000)}${"]".repeat(5000)} }`,
      `policy p { allow: x if ${"any(a, |x| ".repeat(2000)}x${")".repeat(2000)} }`,
    ];
    for (const src of deep) {
      const ds = errorsOf(src);
      expect(ds.some((d) => d.phase === "limit" && /nested too deeply/.test(d.message))).toBe(true);
    }
    // Just under the limit parses.
    expect(() =>
      parse(`policy p { allow: x if ${"(".repeat(60)}a${")".repeat(60)} }`),
    ).not.toThrow();
  });

  it("rule and policy counts", () => {
    const rules = Array.from({ length: 11 }, (_, i) => `allow: a${i}`).join("\n");
    expect(errorsOf(`policy p {\n${rules}\n}`, { maxRules: 10 })[0]!.message).toBe(
      "too many rules: limit is 10",
    );
    const pols = Array.from({ length: 6 }, (_, i) => `policy p${i} {}`).join("\n");
    expect(errorsOf(pols, { maxPolicies: 5 })[0]!.message).toBe("too many policies: limit is 5");
  });

  it("the number of reported errors", () => {
    const src = Array.from({ length: 100 }, () => "policy p { allow: }").join("\n");
    expect(errorsOf(src, { maxErrors: 7 })).toHaveLength(7);
  });
});
