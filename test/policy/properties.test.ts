// Property-based tests (fast-check): parser robustness, format round-trip, order
// independence, cache transparency and the kind rules of equality.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type EvaluationRequest,
  type Expr,
  format,
  formatDocument,
  type JsonValue,
  KEYWORDS,
  MemoryPolicyStore,
  type Policy,
  type PolicyDocument,
  PolicyEngine,
  PolicyError,
  type Pos,
  parse,
  type Requirement,
  type Rule,
  type Target,
} from "../../shared/policy";
import { SECURITY_MODEL_POLICIES, setOf } from "./fixtures";
import { stripPositions } from "./strip";

const P: Pos = { line: 0, column: 0 };

function parsesOrPolicyError(src: string): void {
  try {
    parse(src);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    expect(e.diagnostics.length).toBeGreaterThan(0);
    for (const d of e.diagnostics) {
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
    }
  }
}

describe("the parser never throws anything but PolicyError, and terminates", () => {
  it("on arbitrary strings", () => {
    fc.assert(fc.property(fc.string({ maxLength: 500, unit: "binary" }), parsesOrPolicyError), {
      numRuns: 500,
    });
  });

  const TOKENS = [
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
    "p",
    "q",
    "x",
    "user",
    "contains",
    "starts_with",
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
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "!",
    "+",
    "-",
    "/",
    "%",
    "1",
    "2.5",
    '"s"',
    '"\\u00e9"',
    "//c\n",
    "/*c*/",
    "\n",
    "&",
    "#",
    '"open',
    "1e999",
    "007",
  ];
  it("on token soup", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 300 }), (ts) =>
        parsesOrPolicyError(ts.join(" ")),
      ),
      { numRuns: 1000 },
    );
  });

  it("on mutations of the security model", () => {
    const src = SECURITY_MODEL_POLICIES;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(src.length), fc.nat(8), fc.string({ maxLength: 4 })), {
          minLength: 1,
          maxLength: 5,
        }),
        (edits) => {
          let s = src;
          for (const [at, del, ins] of edits) s = s.slice(0, at) + ins + s.slice(at + del);
          parsesOrPolicyError(s);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("on inputs at the limits", () => {
    for (const src of [
      "(".repeat(200_000),
      `policy p { allow: x if ${"a.".repeat(100_000)}`,
      '"'.repeat(100_000),
      "/*".repeat(100_000),
      "policy p { ".repeat(50_000),
      `policy p { allow: x if ${"[".repeat(100_000)}`,
    ]) {
      expect(() => parse(src)).toThrow(PolicyError);
    }
  });
});

// ---- AST generator ------------------------------------------------------------

const identName = fc.constantFrom("a", "b", "user", "data", "x_1", "_y", "Z9");
const attrName = fc.constantFrom("a", "clearance", "allow", "if", "true", "len", "k_2");
const ruleName = fc.constantFrom("read", "write", "x", "export_all", "t");
const literal = fc.oneof(
  fc.string({ maxLength: 8, unit: "binary" }),
  fc.nat({ max: 1_000_000 }),
  fc
    .double({ min: 0, max: 1e300, noNaN: true, noDefaultInfinity: true })
    .map((d) => (d === 0 ? 0 : d)),
  fc.boolean(),
  fc.constant(null),
);
const comment = fc.oneof(
  fc.string({ maxLength: 10 }).map((s) => `// ${s.replace(/[\r\n]/g, "")}`.trimEnd()),
  fc.string({ maxLength: 10 }).map((s) => `/* ${s.replace(/\*\//g, "")} */`),
);

const { expr } = fc.letrec<{ expr: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", maxDepth: 5, withCrossShrink: true },
    literal.map((value): Expr => ({ kind: "literal", value, pos: P })),
    identName.map((name): Expr => ({ kind: "ident", name, pos: P })),
    fc
      .array(tie("expr"), { maxLength: 3 })
      .map((items): Expr => ({ kind: "array", items, pos: P })),
    fc
      .tuple(tie("expr"), attrName)
      .map(([object, name]): Expr => ({ kind: "member", object, name, pos: P })),
    fc
      .tuple(tie("expr"), tie("expr"))
      .map(([object, index]): Expr => ({ kind: "index", object, index, pos: P })),
    fc
      .tuple(
        tie("expr"),
        fc.constantFrom("contains", "starts_with", "ends_with" as const),
        tie("expr"),
      )
      .map(
        ([object, method, arg]): Expr => ({ kind: "call", object, method, args: [arg], pos: P }),
      ),
    tie("expr").map((operand): Expr => ({ kind: "not", operand, pos: P })),
    tie("expr").map((operand): Expr => ({ kind: "neg", operand, pos: P })),
    tie("expr").map((operand): Expr => ({ kind: "len", operand, pos: P })),
    fc
      .tuple(fc.constantFrom("&&", "||" as const), tie("expr"), tie("expr"))
      .map(([op, left, right]): Expr => ({ kind: "logic", op, left, right, pos: P })),
    fc
      .tuple(fc.constantFrom("==", "!=", "<", "<=", ">", ">=" as const), tie("expr"), tie("expr"))
      .map(([op, left, right]): Expr => ({ kind: "cmp", op, left, right, pos: P })),
    fc
      .tuple(fc.constantFrom("+", "-", "*", "/", "%" as const), tie("expr"), tie("expr"))
      .map(([op, left, right]): Expr => ({ kind: "arith", op, left, right, pos: P })),
    fc.tuple(fc.constantFrom("any", "all" as const), tie("expr"), identName, tie("expr")).map(
      ([quantifier, list, param, body]): Expr => ({
        kind: "quant",
        quantifier,
        list,
        param,
        body,
        pos: P,
      }),
    ),
  ),
}));

const target: fc.Arbitrary<Target> = fc
  .tuple(
    fc.oneof(ruleName, fc.constant("*")),
    fc.option(fc.oneof(ruleName, fc.constant("*")), { nil: undefined }),
  )
  .map(([name, resource]) =>
    resource === undefined ? { name, pos: P } : { name, resource, pos: P },
  );

const obligationWithValue: fc.Arbitrary<Requirement> = fc
  .tuple(identName, literal)
  .map(([name, value]) => ({ kind: "obligation", name, value, pos: P }));

const rule: fc.Arbitrary<Rule> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom("allow", "deny" as const),
      target,
      fc.option(expr, { nil: undefined }),
      fc.array(comment, { maxLength: 2 }),
    )
    .map(
      ([kind, t, condition, comments]): Rule =>
        condition
          ? { kind, target: t, condition, comments, pos: P }
          : { kind, target: t, comments, pos: P },
    ),
  fc
    .tuple(
      fc.array(
        fc.oneof(
          obligationWithValue,
          expr.map((e): Requirement => ({ kind: "condition", expr: e, pos: P })),
        ),
        {
          minLength: 1,
          maxLength: 3,
        },
      ),
      fc.array(comment, { maxLength: 1 }),
    )
    .map(([items, comments]): Rule => ({ kind: "require", items, comments, pos: P })),
  fc
    .tuple(
      fc.array(
        fc.oneof(
          obligationWithValue,
          identName.map((name): Requirement => ({ kind: "obligation", name, pos: P })),
          // In a targeted require a bare identifier is an obligation, so conditions are never bare.
          expr
            .filter((e) => e.kind !== "ident")
            .map((e): Requirement => ({ kind: "condition", expr: e, pos: P })),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      target,
    )
    .map(([items, t]): Rule => ({ kind: "require", items, target: t, comments: [], pos: P })),
);

const documentArb: fc.Arbitrary<PolicyDocument> = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom("p", "q", "r", "secure_data_access", "Policy_2"), {
      maxLength: 4,
    }),
    fc.array(comment, { maxLength: 1 }),
  )
  .chain(([names, endComments]) =>
    fc
      .tuple(
        ...names.map((name) =>
          fc
            .tuple(
              fc.array(rule, { maxLength: 4 }),
              fc.array(comment, { maxLength: 1 }),
              fc.array(comment, { maxLength: 1 }),
            )
            .map(
              ([rules, comments, end]): Policy => ({
                name,
                rules,
                comments,
                endComments: end,
                pos: P,
              }),
            ),
        ),
      )
      .map((policies): PolicyDocument => ({ policies, endComments })),
  );

describe("format round-trips", () => {
  it("parse(format(ast)) equals the AST, modulo positions", () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const text = formatDocument(doc);
        expect(stripPositions(parse(text))).toEqual(stripPositions(doc));
      }),
      { numRuns: 400 },
    );
  });

  it("format is idempotent", () => {
    fc.assert(
      fc.property(documentArb, (doc) => {
        const once = formatDocument(doc);
        expect(format(once)).toBe(once);
      }),
      { numRuns: 200 },
    );
  });

  it("keywords are never generated as identifiers", () => {
    for (const k of ["a", "b", "user", "data", "x_1", "_y", "Z9"])
      expect(KEYWORDS.has(k)).toBe(false);
  });
});

// ---- evaluation properties ---------------------------------------------------------

const ACTIONS = ["read", "write", "export"];
const TAGS = ["pii", "bulk", "urgent"];
const cond = fc.constantFrom(
  "",
  " if ctx.n > 3",
  " if ctx.flag",
  ' if ctx.lvl >= "secret"',
  " if ctx.missing == 1",
  " if any(ctx.xs, |x| x == ctx.n)",
  " if !ctx.flag || ctx.n % 2 == 0",
  // Kind mismatches are evaluation errors: the properties below hold for them too.
  " if ctx.lvl != ctx.n",
  " if ctx.xs.contains(ctx.lvl)",
);
const ruleText = fc.oneof(
  fc
    .tuple(
      fc.constantFrom("allow", "deny"),
      fc.constantFrom(...ACTIONS, ...TAGS, "*"),
      fc.option(fc.constantFrom("doc", "*")),
      cond,
    )
    .map(([k, a, r, c]) => `${k}: ${a}${r === null ? "" : `(${r})`}${c}`),
  fc.constantFrom(
    'require: [level = "high"]',
    "require: [ctx.flag]",
    "require: manager_approval for urgent",
    'require: [note = "bulk"] for bulk',
    "require: ctx.n < 9 for export",
  ),
);
const policiesArb = fc.array(fc.array(ruleText, { minLength: 1, maxLength: 4 }), {
  minLength: 1,
  maxLength: 6,
});
const requestArb: fc.Arbitrary<EvaluationRequest> = fc
  .record({
    action: fc.constantFrom(...ACTIONS, ...TAGS),
    resource: fc.option(fc.constantFrom("doc", "other"), { nil: undefined }),
    tags: fc.subarray(TAGS),
    context: fc.record({
      ctx: fc.record({
        n: fc.integer({ min: 0, max: 10 }),
        flag: fc.boolean(),
        lvl: fc.constantFrom("public", "secret", "top_secret"),
        xs: fc.array(fc.integer({ min: 0, max: 10 }), { maxLength: 4 }),
      }),
    }),
  })
  .map((r) =>
    r.resource === undefined ? { action: r.action, tags: r.tags, context: r.context } : r,
  );

const policyText = (rules: string[], i: number) => `policy p${i} {\n  ${rules.join("\n  ")}\n}`;

describe("evaluation", () => {
  it("is independent of policy order (within a document and across documents)", () => {
    fc.assert(
      fc.property(
        policiesArb,
        fc.array(requestArb, { minLength: 1, maxLength: 8 }),
        fc.integer(),
        (pols, reqs, seed) => {
          const texts = pols.map(policyText);
          const shuffled = shuffle(texts, seed);
          const oneDoc = setOf({ d: texts.join("\n") });
          const oneDocShuffled = setOf({ d: shuffled.join("\n") });
          const manyDocs = setOf(Object.fromEntries(texts.map((t, i) => [`doc${i}`, t])));
          const manyShuffled = setOf(
            Object.fromEntries(
              shuffle(
                texts.map((t, i) => [`doc${i}`, t] as const),
                seed,
              ),
            ),
          );
          expect(manyShuffled.version).toBe(manyDocs.version);
          for (const r of reqs) {
            const { policySetVersion: _, ...a } = oneDoc.evaluate(r);
            const { policySetVersion: __, ...b } = oneDocShuffled.evaluate(r);
            expect(b).toEqual(a);
            expect(manyShuffled.evaluate(r)).toEqual(manyDocs.evaluate(r));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the decision cache never changes a decision", async () => {
    await fc.assert(
      fc.asyncProperty(
        policiesArb,
        fc.array(requestArb, { minLength: 1, maxLength: 10 }),
        async (pols, reqs) => {
          const store = new MemoryPolicyStore();
          const cached = await PolicyEngine.create({ store, cache: { max: 4 } });
          const plain = await PolicyEngine.create({ store, cache: false });
          await cached.put("d", pols.map(policyText).join("\n"));
          await plain.reload();
          for (const r of [...reqs, ...reqs, ...reqs.reverse()]) {
            expect(cached.evaluate(r)).toEqual(plain.evaluate(r));
          }
          expect(cached.evaluateBatch(reqs)).toEqual(plain.evaluateBatch(reqs));
        },
      ),
      { numRuns: 150 },
    );
  });
});

const kind = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);
const eqSet = setOf({
  d: `policy eq { allow: eq if a == b }
      policy ne { allow: ne if a != b }`,
});
const eqOutcome = (op: "eq" | "ne", a: JsonValue, b: JsonValue) =>
  eqSet.evaluate({ action: op, context: { a, b } });

describe("equality", () => {
  // Was: values of different kinds are unequal (so `!=` held and `role == "guest"` was
  // escaped by sending ["guest"]). Now a mismatch is an evaluation error, as for `<`.
  it("== and != between different kinds are evaluation errors, never a decision", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 }), (a, b) => {
        fc.pre(kind(a) !== kind(b));
        for (const op of ["eq", "ne"] as const) {
          const d = eqOutcome(op, a as JsonValue, b as JsonValue);
          expect(d.decision).toBe("deny");
          expect(d.errors?.[0]?.message).toMatch(/cannot compare/);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("between two values of one primitive kind exactly one of == and != holds", () => {
    const prim = fc.oneof(
      fc.tuple(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 })),
      fc.tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -3, max: 3 })),
      fc.tuple(fc.boolean(), fc.boolean()),
      fc.constant([null, null] as const),
    );
    fc.assert(
      fc.property(prim, ([a, b]) => {
        const eq = eqOutcome("eq", a, b);
        const ne = eqOutcome("ne", a, b);
        expect(eq.errors ?? ne.errors).toBeUndefined();
        expect([eq.decision, ne.decision].filter((x) => x === "allow")).toHaveLength(1);
        expect(eq.decision === "allow").toBe(a === b);
      }),
      { numRuns: 300 },
    );
  });

  it("every JSON value equals its copy, without error", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (a) => {
        const copy = JSON.parse(JSON.stringify(a)) as JsonValue;
        expect(eqOutcome("eq", a as JsonValue, copy).decision).toBe("allow");
        expect(eqOutcome("ne", a as JsonValue, copy).errors).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

function shuffle<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
