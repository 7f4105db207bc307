// Formatter: canonical, idempotent, keeps comments, and round-trips the AST.
import { describe, expect, it } from "vitest";
import { format, PolicyError, parse } from "../../shared/policy";
import { SECURITY_MODEL_POLICIES } from "./fixtures";
import { stripPositions } from "./strip";

describe("format", () => {
  it("prints the security model canonically and idempotently", () => {
    const out = format(SECURITY_MODEL_POLICIES);
    expect(format(out)).toBe(out);
    expect(stripPositions(parse(out))).toEqual(stripPositions(parse(SECURITY_MODEL_POLICIES)));
    // The spec's own layout is already canonical except for the one-line lambda deny.
    expect(out).toContain(`    require: [
        user.background_check.current,
        session.secure_connection,
        audit_trail = "detailed"
    ]
}`);
    expect(out).toContain(
      "    deny: aggregate(datasets) if any(datasets, |d| d.privacy_level > operation.privacy_budget)\n",
    );
  });

  it("normalises layout, parentheses and numbers", () => {
    const src = `policy   p{allow:read( x )if((a))&&(b||c)&& -(1+2)*3 > 1.50e1
deny : *   }`;
    expect(format(src)).toBe(
      "policy p {\n    allow: read(x) if a && (b || c) && -(1 + 2) * 3 > 15\n\n    deny: *\n}\n",
    );
  });

  it("keeps the parentheses that change meaning", () => {
    for (const src of [
      "a - (b - c) == 1",
      "(a || b) && c",
      "!(a && b)",
      "(a == b) == c",
      "(-a).x == 1",
      "a / (b * c) == 1",
      "[[1]].contains([1])",
    ]) {
      const doc = `policy p { allow: x if ${src} }`;
      expect(stripPositions(parse(format(doc)))).toEqual(stripPositions(parse(doc)));
    }
  });

  it("keeps comments, hoisting those inside a rule above it", () => {
    const src = `// about p
policy p {
  // before rule
  allow: x if a /* inside */ && b
  // at the end
}
// trailing`;
    const out = format(src);
    expect(out).toBe(`// about p
policy p {
    // before rule
    /* inside */
    allow: x if a && b

    // at the end
}

// trailing
`);
    expect(format(out)).toBe(out);
  });

  it("brackets a single requirement that starts with '['", () => {
    const out = format("policy p { require: [[1].contains(a)] }");
    expect(out).toContain("require: [\n        [1].contains(a)\n    ]");
    expect(format(out)).toBe(out);
  });

  it("throws PolicyError on invalid source", () => {
    expect(() => format("policy {")).toThrow(PolicyError);
  });
});
