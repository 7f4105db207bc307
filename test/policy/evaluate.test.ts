// Decision procedure and value semantics of docs/policy-language.md.
import { describe, expect, it } from "vitest";
import type { EvaluationRequest, JsonObject } from "../../shared/policy";
import { evalOne, setOf } from "./fixtures";

const req = (action: string, context: JsonObject = {}, extra: Partial<EvaluationRequest> = {}) => ({
  action,
  context,
  ...extra,
});
const cond = (expr: string, context: JsonObject, levels?: string[]) =>
  evalOne(
    `policy p { allow: t if ${expr} }`,
    req("t", context),
    levels ? { classificationLevels: levels } : {},
  );

describe("values and comparisons", () => {
  it("numbers compare numerically; strings and booleans with == and !=", () => {
    expect(cond("a > 9", { a: 10 }).decision).toBe("allow");
    expect(cond('a == "x" && b != false && c == null', { a: "x", b: true, c: null }).decision).toBe(
      "allow",
    );
    expect(
      cond("a == [1, b][1] && [a] == [b] && a != c", {
        a: { k: [2] },
        b: { k: [2] },
        c: { k: [3] },
      }).decision,
    ).toBe("allow");
    // Different kinds are an evaluation error (was: unequal, so `!=` held), as with `<`.
    const d = cond('a == "1"', { a: 1 });
    expect(d.decision).toBe("deny");
    expect(d.errors?.[0]?.message).toBe(`a == "1": cannot compare number with string using '=='`);
  });

  it("ordered comparison of strings needs classification levels", () => {
    expect(cond('a < "secret"', { a: "internal" }).decision).toBe("allow");
    const d = cond('a < "zebra"', { a: "apple" });
    expect(d.decision).toBe("deny");
    expect(d.errors?.[0]?.message).toMatch(/"apple" is not a classification level/);
  });

  it("classification levels come from configuration", () => {
    const levels = ["green", "amber", "red"];
    expect(cond('a > "green"', { a: "red" }, levels).decision).toBe("allow");
    expect(cond('a > "internal"', { a: "secret" }, levels).errors).toBeDefined();
  });

  it("ordered comparison of different kinds, booleans or null is an evaluation error", () => {
    for (const [expr, ctx] of [
      ["a < 1", { a: "1" }],
      ["a > b", { a: true, b: false }],
      ["a >= 0", { a: null }],
      ["a <= [1]", { a: [1] }],
    ] as const) {
      const d = cond(expr, ctx as JsonObject);
      expect(d.decision).toBe("deny");
      expect(d.errors).toHaveLength(1);
    }
  });

  it("reading an absent attribute is an error, not false", () => {
    const d = cond("user.x == 1 || true", { user: {} });
    expect(d.decision).toBe("deny");
    expect(d.errors?.[0]?.message).toBe("user.x: attribute 'x' is absent");
    expect(cond("missing == 1", {}).errors?.[0]?.message).toMatch(
      /'missing' is absent from the context/,
    );
  });

  it("&& and || short-circuit", () => {
    expect(cond("a.present && a.x == 1", { a: { present: false } }).decision).toBe("deny");
    expect(cond("a.present && a.x == 1", { a: { present: false } }).errors).toBeUndefined();
    expect(cond("a.present || a.x == 1", { a: { present: true } }).decision).toBe("allow");
  });

  it("conditions must be booleans", () => {
    expect(cond("a", { a: 1 }).errors?.[0]?.message).toMatch(/must be a boolean/);
    expect(cond("a && true", { a: "yes" }).errors).toBeDefined();
    expect(cond("!a", { a: null }).errors).toBeDefined();
  });

  it("methods, len, indexing and arithmetic", () => {
    const ctx = {
      s: "hello world",
      xs: ["a", { b: 1 }],
      os: [{ b: 2 }, { b: 1 }],
      ws: ["a", "b"],
      o: { k: 1, j: 2 },
      o2: { b: 1 },
      n: 7,
    };
    for (const e of [
      's.contains("lo w")',
      's.starts_with("hell") && s.ends_with("rld")',
      'os.contains(o2) && !ws.contains("z") && xs.contains("a")',
      'len(s) == 11 && len(xs) == 2 && len(o) == 2 && len("é😀") == 2',
      'xs[1].b == 1 && o["j"] == 2',
      "n % 4 == 3 && n / 2 == 3.5 && -n + 10 == 3 && n * 2 - 1 == 13",
      '"a" + "b" == "ab"',
      "all([], |x| false) && !any([], |x| true)",
    ]) {
      expect(cond(e, ctx).decision, e).toBe("allow");
    }
    for (const e of [
      "xs[2] == 1",
      "xs[0.5] == 1",
      'o["zz"] == 1',
      "n / 0 == 1",
      "s.contains(1)",
      // Array membership is `==` on each element in turn: a mismatched kind before a match is
      // an error (this array was searchable for any kind before).
      'xs.contains("z")',
      "xs.contains(o2)",
      "n.contains(1)",
      "len(n) == 1",
      '"a" + 1 == 1',
      "any(o, |x| true)",
      "-s == 1",
      "o.k.z == 1",
    ]) {
      expect(cond(e, ctx).errors, e).toBeDefined();
    }
  });

  it("lambdas see their parameter and the context; nested lambdas shadow", () => {
    const ctx = { xs: [1, 2, 3], ys: [[1], [2, 3]], lim: 2 };
    expect(cond("any(xs, |x| x > lim)", ctx).decision).toBe("allow");
    expect(cond("all(xs, |x| x > lim)", ctx).decision).toBe("deny");
    expect(cond("all(ys, |y| any(y, |x| x >= 1))", ctx).decision).toBe("allow");
    expect(cond("any(ys, |x| any(x, |x| x == 3))", ctx).decision).toBe("allow");
  });

  it("a hostile nested any/all exhausts the evaluation budget instead of hanging", () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i);
    // No clock: the work budget, not the time backstop, is what stops it (deterministically).
    const d = evalOne(
      "policy p { allow: t if any(xs, |a| any(xs, |b| any(xs, |c| c < 0))) }",
      req("t", { xs }),
      { evaluation: { clock: null } },
    );
    expect(d.decision).toBe("deny");
    expect(d.errors?.[0]?.message).toMatch(/budget exceeded/);
  });

  it("attributes are own properties only", () => {
    expect(cond("o.constructor == 1", { o: {} }).errors).toBeDefined();
    expect(cond('o["__proto__"] == 1', { o: {} }).errors).toBeDefined();
  });
});

describe("matching", () => {
  const src = `policy m {
    allow: read(doc)
    allow: write(*)
    allow: *(public)
    allow: tagged
    deny: read(secret)
  }`;
  const set = setOf({ m: src });
  it("verb(res), *, and bare names by action or tag", () => {
    expect(set.evaluate(req("read", {}, { resource: "doc" })).decision).toBe("allow");
    expect(set.evaluate(req("read", {}, { resource: "other" })).decision).toBe("deny");
    expect(set.evaluate(req("read", {})).decision).toBe("deny");
    expect(set.evaluate(req("write", {}, { resource: "anything" })).decision).toBe("allow");
    expect(set.evaluate(req("write", {})).decision).toBe("allow");
    expect(set.evaluate(req("delete", {}, { resource: "public" })).decision).toBe("allow");
    expect(set.evaluate(req("tagged", {})).decision).toBe("allow");
    expect(set.evaluate(req("x", {}, { tags: ["tagged"] })).decision).toBe("allow");
    expect(set.evaluate(req("x", {}, { tags: ["other"] })).decision).toBe("deny");
    expect(set.evaluate(req("read", {}, { resource: "secret", tags: ["tagged"] })).decision).toBe(
      "deny",
    );
  });

  it("verb(res) does not match by tag", () => {
    expect(set.evaluate(req("x", {}, { resource: "doc", tags: ["read"] })).decision).toBe("deny");
  });

  it("the index limits evaluation to candidates", () => {
    const big = Array.from(
      { length: 500 },
      (_, i) => `policy p${i} { allow: act${i % 50}(r) deny: tag${i % 10} }`,
    ).join("\n");
    const s = setOf({ big });
    expect(s.candidateCount({ action: "act3" })).toBe(10);
    expect(s.candidateCount({ action: "act3", tags: ["tag1"] })).toBe(60);
    expect(s.candidateCount({ action: "tag1", tags: ["tag1"] })).toBe(50);
    expect(s.candidateCount({ action: "nothing" })).toBe(0);
  });
});

describe("decision procedure", () => {
  it("default deny with no policies", () => {
    const d = setOf({}).evaluate(req("read", {}, { resource: "x" }));
    expect(d).toMatchObject({ decision: "deny", reason: "no policy allows read(x)", matched: [] });
  });

  it("deny beats allow; an error beats allow", () => {
    const both = setOf({ a: "policy a { allow: go }", b: "policy b { deny: go }" }).evaluate(
      req("go"),
    );
    expect(both.decision).toBe("deny");
    expect(both.matched).toEqual([
      { document: "b", policy: "b", rule: "deny: go", effect: "deny" },
    ]);
    const err = setOf({
      a: "policy a { allow: go }",
      b: "policy b { allow: go if nope }",
    }).evaluate(req("go"));
    expect(err.decision).toBe("deny");
    expect(err.matched).toEqual([
      { document: "b", policy: "b", rule: "allow: go", effect: "error" },
    ]);
    expect(err.reason).toMatch(
      /^evaluation error \(fail closed\): b: allow: go: nope: 'nope' is absent/,
    );
  });

  it("an untargeted require gates only its own policy's allows", () => {
    const s = setOf({
      d: `policy strict { allow: go require: ok }
          policy lax { allow: go }`,
    });
    const d = s.evaluate(req("go", { ok: false }));
    expect(d.decision).toBe("allow");
    expect(d.matched.map((m) => m.policy)).toEqual(["lax"]);
    expect(
      setOf({ d: "policy strict { allow: go require: ok }" }).evaluate(req("go", { ok: false }))
        .decision,
    ).toBe("deny");
  });

  it("obligations: RequireApproval > AllowWithConditions > Allow, collected across policies", () => {
    const s = setOf({
      d: `policy a { allow: go require: [level = "high", n = 2] }
          policy b { allow: go require: [level = "high"] }
          policy c { require: [security_approval, ticket = true] for go require: manager_approval for urgent }`,
    });
    const d = s.evaluate(req("go", {}, { tags: ["urgent"] }));
    expect(d.decision).toBe("require_approval");
    expect(d.approver).toBe("manager");
    expect(d.approvers).toEqual(["manager", "security"]);
    expect(d.conditions).toEqual([
      { name: "level", value: "high" },
      { name: "manager_approval" },
      { name: "n", value: 2 },
      { name: "security_approval" },
      { name: "ticket", value: true },
    ]);
    const plain = setOf({ d: 'policy a { allow: go require: [level = "high"] }' }).evaluate(
      req("go"),
    );
    expect(plain.decision).toBe("allow_with_conditions");
  });

  it("a targeted expression requirement that fails blocks the allow", () => {
    const s = setOf({ d: "policy a { allow: export require: session.mfa for export }" });
    expect(s.evaluate(req("export", { session: { mfa: true } })).decision).toBe("allow");
    const d = s.evaluate(req("export", { session: { mfa: false } }));
    expect(d.decision).toBe("deny");
    expect(d.unmet?.[0]).toMatchObject({ policy: "a", message: "session.mfa" });
  });

  it("permissive mode computes the same decision with enforced: false", () => {
    const src = "policy a { deny: go if x > 1 }";
    const strict = evalOne(src, req("go", { x: 2 }));
    const perm = evalOne(src, req("go", { x: 2 }), { mode: "permissive" });
    expect(strict.enforced).toBe(true);
    expect(perm.enforced).toBe(false);
    expect({ ...perm, enforced: true }).toEqual(strict);
  });

  it("every decision carries the policy-set version", () => {
    const a = setOf({ d: "policy a { allow: go }" });
    const b = setOf({ d: "policy a { allow: go }\n" });
    expect(a.evaluate(req("go")).policySetVersion).toMatch(/^[0-9a-f]{32}$/);
    expect(a.evaluate(req("go")).policySetVersion).not.toBe(b.evaluate(req("go")).policySetVersion);
    expect(setOf({ d: "policy a { allow: go }" }).version).toBe(a.version);
  });
});
