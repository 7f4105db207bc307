// Budget bombs (issue 15, item 7): the evaluation budget counts work, not lambda iterations.
// An evaluation over budget is an evaluation error: a deny rule fails closed, an allow rule does
// not grant. The engine's own work count is asserted, never a timing; the tests run without a
// clock so the work budget (not the time backstop) is what stops them, deterministically.
import { describe, expect, it } from "vitest";
import {
  type Decision,
  EVAL_BUDGET,
  type EvaluationRequest,
  type EvaluationUsage,
  type JsonObject,
  MemoryPolicyStore,
  PolicyEngine,
  type PolicyEngineOptions,
} from "../../shared/policy";
import { SECURE_DATA_ACCESS } from "./fixtures";

async function engineWith(
  sources: Record<string, string>,
  opts: Partial<PolicyEngineOptions> = {},
): Promise<PolicyEngine> {
  const e = await PolicyEngine.create({
    store: new MemoryPolicyStore(),
    cache: false,
    evaluation: { clock: null },
    ...opts,
  });
  for (const [name, src] of Object.entries(sources)) {
    const r = await e.put(name, src);
    if (!r.ok) throw new Error(`${name}: ${JSON.stringify(r.errors)}`);
  }
  return e;
}

const usage = (): EvaluationUsage => ({ work: 0, timedOut: false });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function expectOverBudget(d: Decision, u?: EvaluationUsage): void {
  expect(d.decision).toBe("deny");
  expect(d.reason).toMatch(/^evaluation error \(fail closed\)/);
  expect(d.errors?.[0]?.message).toMatch(
    new RegExp(`evaluation budget exceeded \\(${EVAL_BUDGET} work units\\)$`),
  );
  if (u) {
    expect(u.work).toBeLessThanOrEqual(EVAL_BUDGET);
    expect(u.timedOut).toBe(false);
  }
}

// The first payload: a 16 KB string and 9,000 items, one 60 KB request (17 s before).
const A16 = Array.from({ length: 16 }, () => "a").join(" + ");
const stringBomb = (): EvaluationRequest => ({
  action: "go",
  context: { a: "x".repeat(16_384), xs: range(9000) },
});

// The second payload: all(requested, |s| granted.contains(s)), quadratic per request.
const GRANT = "policy grant { allow: use if all(requested, |s| granted.contains(s)) }";
const containsBomb = (): EvaluationRequest => ({
  action: "use",
  context: {
    granted: range(5000).map((i) => `g${i}`),
    requested: Array.from({ length: 4990 }, () => "g4999"),
  },
});

describe("the evaluation budget charges work", () => {
  it("a string-building bomb under a deny rule fails closed, within the budget", async () => {
    const e = await engineWith({
      bomb: `policy bomb {
        allow: go
        deny: go if any(xs, |i| len(${A16}) < 0)
      }`,
    });
    const u = usage();
    const d = e.evaluate(stringBomb(), u);
    expectOverBudget(d, u);
    expect(d.matched).toEqual([
      { document: "bomb", policy: "bomb", rule: "deny: go", effect: "error" },
    ]);
    // The budget was spent, not skipped: the first string built is already 16 × 16 KB.
    expect(u.work).toBeGreaterThan(EVAL_BUDGET / 2);
  });

  it("the same bomb under an allow rule does not grant", async () => {
    const e = await engineWith({
      bomb: `policy bomb { allow: go if !any(xs, |i| len(${A16}) < 0) }`,
    });
    const u = usage();
    const d = e.evaluate(stringBomb(), u);
    expectOverBudget(d, u);
    expect(d.matched.every((m) => m.effect === "error")).toBe(true);
  });

  it("a quadratic contains() over one request is over budget: not granted", async () => {
    const e = await engineWith({ grant: GRANT });
    const u = usage();
    expectOverBudget(e.evaluate(containsBomb(), u), u);
    // The same policy still grants an ordinary request, for a few units.
    const ok = usage();
    const d = e.evaluate(
      { action: "use", context: { granted: ["a", "b"], requested: ["b", "a"] } },
      ok,
    );
    expect(d.decision).toBe("allow");
    expect(ok.work).toBeLessThan(20);
  });

  it("every size-dependent operation is charged by size", async () => {
    const s = "x".repeat(16_384);
    const t = `${"x".repeat(16_383)}y`;
    const big = range(2000).map((i) => `v${i}`);
    const big2 = [...big.slice(0, -1), "other"];
    const obj = Object.fromEntries(big.map((k) => [k, 1]));
    const obj2 = { ...obj, v1999: 2 };
    const xs = range(100);
    const cases: [string, JsonObject][] = [
      ["len(s + s) < 0", { s, xs }], // concatenation, by the result's length
      ["len(s) < 0", { s, xs }], // code points of a string
      ["s == t", { s, t, xs }], // string equality
      ["s.contains(t)", { s, t, xs }], // substring search
      ["s.starts_with(t) || s.ends_with(t)", { s, t, xs }],
      ["big == big2", { big, big2, xs }], // structures, every element
      ["obj == obj2", { obj, obj2, xs }], // structures, every key
      ['big.contains("none")', { big, xs }], // membership, every element
      ["len(obj) < 0", { obj, xs }],
      [
        `[${range(40)
          .map(() => "i")
          .join(", ")}][0] < 0`,
        { xs: range(3000) },
      ], // array literals
    ];
    for (const [expr, ctx] of cases) {
      const e = await engineWith({ p: `policy p { allow: go if any(xs, |i| ${expr}) }` });
      const u = usage();
      const d = e.evaluate({ action: "go", context: ctx }, u);
      expect(d.errors?.[0]?.message, expr).toMatch(/evaluation budget exceeded/);
      expect(d.decision, expr).toBe("deny");
      expect(u.work, expr).toBeLessThanOrEqual(EVAL_BUDGET);
    }
  });

  it("an ordinary evaluation costs a handful of work units", async () => {
    const e = await engineWith({ d: SECURE_DATA_ACCESS });
    const u = usage();
    const d = e.evaluate(
      {
        action: "read",
        resource: "sensitive_data",
        context: {
          user: {
            clearance: "secret",
            need_to_know: ["finance", "hr"],
            background_check: { current: true },
          },
          session: { mfa_verified: true, secure_connection: true },
          data: { classification: "hr" },
        },
      },
      u,
    );
    expect(d.decision).toBe("allow_with_conditions");
    expect(u.work).toBeGreaterThan(0);
    expect(u.work).toBeLessThan(50);
  });
});

describe("batches", () => {
  it("each request has its own budget, and the batch yields to the event loop between them", async () => {
    let yields = 0;
    const e = await engineWith(
      { grant: GRANT },
      {
        yieldToLoop: async () => {
          yields++;
        },
      },
    );
    const small: EvaluationRequest = {
      action: "use",
      context: { granted: ["a"], requested: ["a"] },
    };
    const out = await e.evaluateBatchYielding([
      containsBomb(),
      small,
      containsBomb(),
      containsBomb(),
    ]);
    expect(out.map((d) => d.decision)).toEqual(["deny", "allow", "deny", "deny"]);
    for (const i of [0, 2, 3]) expectOverBudget(out[i]!);
    // Without a clock the slices are counted in work: one budget's worth, so each bomb ends one.
    expect(yields).toBe(3);
    // The same decisions as the synchronous batch.
    expect(out).toEqual(e.evaluateBatch([containsBomb(), small, containsBomb(), containsBomb()]));
  });

  it("cheap batches are not sliced", async () => {
    let yields = 0;
    const e = await engineWith(
      { grant: GRANT },
      {
        yieldToLoop: async () => {
          yields++;
        },
      },
    );
    const small = { action: "use", context: { granted: ["a"], requested: ["a"] } };
    const out = await e.evaluateBatchYielding(Array.from({ length: 1000 }, () => small));
    expect(out.every((d) => d.decision === "allow")).toBe(true);
    expect(yields).toBe(0);
  });
});

describe("the time limit is a backstop", () => {
  it("an evaluation past it fails closed, and its decision is not cached", async () => {
    let now = 0;
    let step = 0;
    const e = await engineWith(
      { p: "policy p { allow: go if all(xs, |x| x >= 0) }" },
      // Cache on: a decision cut short by the clock depends on load, not on the request.
      { cache: {}, evaluation: { clock: () => (now += step), maxMs: 10 } },
    );
    const req = { action: "go", context: { xs: range(10_000) } };
    step = 20; // every look at the clock finds 20 ms gone
    const u = usage();
    const slow = e.evaluate(req, u);
    expect(slow.decision).toBe("deny");
    expect(slow.errors?.[0]?.message).toMatch(/evaluation time limit exceeded \(10 ms\)$/);
    expect(u.timedOut).toBe(true);
    step = 0;
    const again = e.evaluate(req, u);
    expect(again.decision).toBe("allow");
    expect(u.timedOut).toBe(false);
  });

  it("cheap evaluations never read the clock", async () => {
    let reads = 0;
    const e = await engineWith(
      { d: SECURE_DATA_ACCESS },
      {
        evaluation: {
          clock: () => {
            reads++;
            return 0;
          },
        },
      },
    );
    e.evaluate({ action: "export", resource: "data", context: { data: { contains_pii: true } } });
    // The meter first looks at the clock after a few thousand units of work.
    expect(reads).toBe(0);
  });
});
