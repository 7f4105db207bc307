// Kind mismatches (issue 15, item 8): `==`, `!=` and array `contains()` between values of
// different kinds are evaluation errors, as `<` already was, so a deny rule cannot be escaped
// by sending the right value in the wrong shape, and an allow rule never grants on one.
import { describe, expect, it } from "vitest";
import {
  type Decision,
  type JsonObject,
  type JsonValue,
  MemoryPolicyStore,
  PolicyEngine,
} from "../../shared/policy";
import { evalOne, setOf } from "./fixtures";

const GUARD = `policy guard {
  allow: go
  deny: go if role == "guest"
}`;

const go = (context: JsonObject) => ({ action: "go", context });

function expectKindError(d: Decision, pattern: RegExp): void {
  expect(d.decision).toBe("deny");
  expect(d.reason).toMatch(/^evaluation error \(fail closed\)/);
  expect(d.errors?.[0]?.message).toMatch(pattern);
}

describe("== and != between kinds", () => {
  const guard = setOf({ guard: GUARD });

  it('`deny … if role == "guest"` cannot be escaped by sending ["guest"]', () => {
    expect(guard.evaluate(go({ role: "guest" })).reason).toBe("denied by guard: deny: go");
    expect(guard.evaluate(go({ role: "admin" })).decision).toBe("allow");
    const d = guard.evaluate(go({ role: ["guest"] }));
    expectKindError(d, /^role == "guest": cannot compare array with string using '=='$/);
    expect(d.matched).toEqual([
      { document: "guard", policy: "guard", rule: "deny: go", effect: "error" },
    ]);
  });

  it("every other kind of role fails closed too, null included", () => {
    for (const role of [1, true, null, { name: "guest" }, [], ["guest", "admin"]] as JsonValue[]) {
      expectKindError(guard.evaluate(go({ role })), /cannot compare \w+ with string using '=='/);
    }
  });

  it("allow rules with a mismatch do not grant, whichever operator", () => {
    for (const [cond, ctx] of [
      ["level == 3", { level: "3" }],
      ['level != "low"', { level: ["low"] }],
      ["flag == true", { flag: "true" }],
      ["flag != false", { flag: 0 }],
      ['team == "red"', { team: null }],
    ] as const) {
      const d = evalOne(`policy p { allow: go if ${cond} }`, go(ctx as JsonObject));
      expectKindError(d, /cannot compare/);
      expect(d.matched.map((m) => m.effect)).toEqual(["error"]);
    }
  });

  it("an error in one allow rule denies even where another grants (fail closed)", () => {
    const s = setOf({
      d: `policy a { allow: go }
          policy b { allow: go if tier == "gold" }`,
    });
    expect(s.evaluate(go({ tier: "silver" })).decision).toBe("allow");
    expectKindError(s.evaluate(go({ tier: { gold: true } })), /cannot compare object with string/);
  });

  it("a literal null is a null test, for any kind; an absent attribute is still an error", () => {
    const p = (cond: string) => `policy p { allow: go if ${cond} }`;
    for (const v of ["x", 0, false, [], {}, [null]] as JsonValue[]) {
      expect(evalOne(p("v == null"), go({ v })).decision).toBe("deny");
      expect(evalOne(p("v == null"), go({ v })).errors).toBeUndefined();
      expect(evalOne(p("v != null && null != v"), go({ v })).decision).toBe("allow");
    }
    expect(evalOne(p("v == null && null == v"), go({ v: null })).decision).toBe("allow");
    expect(evalOne(p("null == null"), go({})).decision).toBe("allow");
    expect(evalOne(p("u.v == null"), go({ u: {} })).errors?.[0]?.message).toBe(
      "u.v: attribute 'v' is absent",
    );
    // Inside a structure null is a kind like any other.
    expectKindError(evalOne(p('[v] == ["x"]'), go({ v: null })), /cannot compare null with string/);
  });

  it("structures: different shapes are unequal, a mismatch at any shared position is an error", () => {
    const p = "policy p { allow: go if a != b }";
    expect(evalOne(p, go({ a: [1], b: [1, 2] })).decision).toBe("allow");
    expect(evalOne(p, go({ a: { k: 1 }, b: { j: 1 } })).decision).toBe("allow");
    expect(evalOne(p, go({ a: { k: [1, "x"] }, b: { k: [1, "x"] } })).decision).toBe("deny");
    expectKindError(
      evalOne(p, go({ a: ["guest"], b: [["guest"]] })),
      /cannot compare string with array/,
    );
    // Not hidden by a difference found earlier, in either key order.
    for (const b of [
      { x: 2, y: 3 },
      { y: 3, x: 2 },
    ]) {
      expectKindError(
        evalOne(p, go({ a: { x: 1, y: "s" }, b })),
        /cannot compare string with number/,
      );
    }
  });
});

describe("contains() on arrays compares like ==", () => {
  const p = (cond: string) => `policy p { allow: go deny: go if ${cond} }`;

  it("membership in a deny list cannot be escaped by wrapping the value", () => {
    const src = p('["guest", "anon"].contains(role)');
    expect(evalOne(src, go({ role: "anon" })).decision).toBe("deny");
    expect(evalOne(src, go({ role: "admin" })).decision).toBe("allow");
    expectKindError(
      evalOne(src, go({ role: ["anon"] })),
      /cannot compare string with array using contains\(\)$/,
    );
  });

  it("an attacker's list with a decoy of the right kind still fails closed", () => {
    const src = p('roles.contains("guest")');
    expect(evalOne(src, go({ roles: ["admin", "guest"] })).decision).toBe("deny");
    expect(evalOne(src, go({ roles: [] })).decision).toBe("allow");
    expectKindError(evalOne(src, go({ roles: ["x", ["guest"]] })), /cannot compare array/);
    expectKindError(evalOne(src, go({ roles: [{ guest: true }] })), /cannot compare object/);
  });

  it("contains(null) is a null test", () => {
    const src = "policy p { allow: go if xs.contains(null) }";
    expect(evalOne(src, go({ xs: ["a", 1, null] })).decision).toBe("allow");
    expect(evalOne(src, go({ xs: ["a", 1, []] })).errors).toBeUndefined();
  });
});

describe("the engine", () => {
  it("serves the same decision from its cache whatever the order of the context's keys", async () => {
    const store = new MemoryPolicyStore();
    const cached = await PolicyEngine.create({ store });
    const plain = await PolicyEngine.create({ store, cache: false });
    await cached.put("p", "policy p { allow: go if a != b }");
    await plain.reload();
    const ctxs = [
      { a: { x: 1, y: "s" }, b: { x: 2, y: 3 } },
      { a: { y: "s", x: 1 }, b: { y: 3, x: 2 } },
    ];
    for (const ctx of [...ctxs, ...ctxs.reverse()]) {
      const d = cached.evaluate(go(ctx));
      expect(d).toEqual(plain.evaluate(go(ctx)));
      expect(d.errors?.[0]?.message).toMatch(/cannot compare string with number/);
    }
  });
});
