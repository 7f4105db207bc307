// The engine over the memory store: versions, rollback, delete, atomic swap, cache, batch, schemas.
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../shared/encoding";
import {
  EvaluationBatchSchema,
  type EvaluationRequest,
  EvaluationRequestSchema,
  MemoryPolicyStore,
  PolicyConfigSchema,
  PolicyEngine,
  PolicyNameError,
  type PolicySnapshot,
} from "../../shared/policy";

const go = { action: "go", context: {} };

async function engine(opts: Partial<Parameters<typeof PolicyEngine.create>[0]> = {}) {
  const store = new MemoryPolicyStore();
  return { store, e: await PolicyEngine.create({ store, cache: false, ...opts }) };
}

describe("documents", () => {
  it("put → {name, version, sha256}; the next evaluation sees the new version", async () => {
    const { e } = await engine();
    expect(e.evaluate(go).decision).toBe("deny");
    const v0 = e.policySetVersion;
    const r = await e.put("main", "policy p { allow: go }");
    expect(r).toEqual({
      ok: true,
      name: "main",
      version: 1,
      sha256: sha256Hex("policy p { allow: go }"),
      unchanged: false,
    });
    const d = e.evaluate(go);
    expect(d.decision).toBe("allow");
    expect(d.policySetVersion).toBe(e.policySetVersion);
    expect(d.policySetVersion).not.toBe(v0);
    expect((await e.put("main", "policy p { deny: go }")).ok).toBe(true);
    expect(e.evaluate(go).decision).toBe("deny");
  });

  it("a failed parse changes nothing and reports located errors", async () => {
    const { e, store } = await engine();
    await e.put("main", "policy p { allow: go }");
    const version = e.policySetVersion;
    const rev = await store.revision();
    const r = await e.put("main", "policy p {\n  allow: go if\n  deny: x if y = 1\n}");
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([
      { line: 3, column: 3, message: "expected an expression, found 'deny'" },
      {
        line: 3,
        column: 16,
        message: "assignment '=' is only allowed for obligations in a require (did you mean '=='?)",
      },
    ]);
    expect(e.policySetVersion).toBe(version);
    expect(await store.revision()).toBe(rev);
    expect((await e.versions("main")).length).toBe(1);
    expect(e.evaluate(go).decision).toBe("allow");
  });

  it("re-putting identical text does not create a version", async () => {
    const { e } = await engine();
    await e.put("main", "policy p { allow: go }");
    const r = await e.put("main", "policy p { allow: go }");
    expect(r).toMatchObject({ ok: true, version: 1, unchanged: true });
  });

  it("list, get, versions, rollback and delete", async () => {
    let t = 0;
    const { e } = await engine({ now: () => new Date(Date.UTC(2026, 0, 1, 0, 0, t++)) });
    await e.put("main", "policy p { allow: go }");
    await e.put("main", "policy p { deny: go }\npolicy q { allow: stop }");
    await e.put("extra", "policy x { allow: other }");
    expect(await e.list()).toEqual([
      {
        name: "extra",
        version: 1,
        sha256: expect.any(String),
        createdAt: "2026-01-01T00:00:02.000Z",
        policies: ["x"],
      },
      {
        name: "main",
        version: 2,
        sha256: expect.any(String),
        createdAt: "2026-01-01T00:00:01.000Z",
        policies: ["p", "q"],
      },
    ]);
    expect((await e.get("main"))?.version).toBe(2);
    expect((await e.get("main", 1))?.source).toBe("policy p { allow: go }");
    expect((await e.versions("main")).map((v) => [v.version, v.current])).toEqual([
      [1, false],
      [2, true],
    ]);
    const setV2 = e.policySetVersion;

    const rb = await e.rollback("main", 1);
    expect(rb.ok && rb.record.version).toBe(1);
    expect(e.evaluate(go).decision).toBe("allow");
    expect(await e.rollback("main", 7)).toEqual({ ok: false, reason: "not_found" });

    await e.rollback("main", 2);
    expect(e.policySetVersion).toBe(setV2); // same content, same set version

    expect(await e.delete("main")).toBe(true);
    expect(await e.delete("main")).toBe(false);
    expect(e.evaluate(go).decision).toBe("deny");
    expect((await e.list()).map((l) => l.name)).toEqual(["extra"]);
  });

  it("rejects invalid document names", async () => {
    const { e } = await engine();
    await expect(e.put("../etc", "policy p {}")).rejects.toBeInstanceOf(PolicyNameError);
  });

  it("fails closed when the store is unavailable", async () => {
    const store = new MemoryPolicyStore();
    const broken = Object.assign(Object.create(store) as MemoryPolicyStore, {
      snapshot: async (): Promise<PolicySnapshot> => {
        throw new Error("connection refused");
      },
    });
    const e = new PolicyEngine({ store: broken });
    await expect(e.reload()).rejects.toThrow(/connection refused/);
    const d = e.evaluate(go);
    expect(d).toMatchObject({ decision: "deny", enforced: true, policySetVersion: "unavailable" });
    expect(d.reason).toMatch(/policy store unavailable: connection refused/);
  });

  it("an engine that was never loaded denies", () => {
    const e = new PolicyEngine({ store: new MemoryPolicyStore() });
    expect(e.evaluate(go)).toMatchObject({ decision: "deny", reason: "policy set not loaded" });
  });
});

describe("cache and batch", () => {
  const src = `policy p {
    allow: read(doc) if user.level >= 2
    require: [audit = "full"]
  }`;
  const reqs: EvaluationRequest[] = [
    { action: "read", resource: "doc", context: { user: { level: 3 } } },
    { action: "read", resource: "doc", context: { user: { level: 1 } } },
    { action: "read", resource: "doc", context: { user: {} } },
  ];

  it("cached and uncached decisions are equal, and a new version invalidates", async () => {
    let n = 0;
    const store = new MemoryPolicyStore();
    const cached = await PolicyEngine.create({ store, decisionId: () => `id-${n++}` });
    const plain = await PolicyEngine.create({ store, cache: false });
    await cached.put("p", src);
    await plain.reload();
    for (const r of [...reqs, ...reqs]) {
      const a = cached.evaluate(r);
      const { decisionId, ...rest } = a;
      expect(decisionId).toMatch(/^id-\d+$/);
      expect(rest).toEqual(plain.evaluate(r));
    }
    // Fresh ids even on cache hits.
    expect(cached.evaluate(reqs[0]!).decisionId).not.toBe(cached.evaluate(reqs[0]!).decisionId);
    await cached.put("p", src.replace(">= 2", ">= 5"));
    expect(cached.evaluate(reqs[0]!).decision).toBe("deny");
  });

  it("cached decisions cannot be mutated by a caller", async () => {
    const { e } = await engine({ cache: {} });
    await e.put("p", src);
    const d = e.evaluate(reqs[0]!);
    expect(() => {
      (d.matched as unknown[]).push("x");
    }).toThrow();
    expect(e.evaluate(reqs[0]!).matched).toHaveLength(2);
  });

  it("batch evaluation returns decisions in order against one set version", async () => {
    const { e } = await engine();
    await e.put("p", src);
    const out = e.evaluateBatch(reqs);
    expect(out.map((d) => d.decision)).toEqual(["allow_with_conditions", "deny", "deny"]);
    expect(new Set(out.map((d) => d.policySetVersion)).size).toBe(1);
    expect(out).toEqual(reqs.map((r) => e.evaluate(r)));
  });

  it("permissive mode: enforced false throughout", async () => {
    const { e } = await engine({ config: { mode: "permissive" } });
    await e.put("p", src);
    expect(e.evaluate(reqs[1]!)).toMatchObject({ decision: "deny", enforced: false });
  });
});

describe("schemas", () => {
  it("evaluation requests are bounded", () => {
    expect(EvaluationRequestSchema.safeParse({ action: "read", context: {} }).success).toBe(true);
    expect(EvaluationRequestSchema.safeParse({ action: "", context: {} }).success).toBe(false);
    expect(EvaluationRequestSchema.safeParse({ action: "read" }).success).toBe(false);
    expect(EvaluationRequestSchema.safeParse({ action: "read", context: [] }).success).toBe(false);
    expect(
      EvaluationRequestSchema.safeParse({ action: "read", context: {}, extra: 1 }).success,
    ).toBe(false);
    expect(
      EvaluationRequestSchema.safeParse({ action: "read", context: { a: Number.NaN } }).success,
    ).toBe(false);
    expect(
      EvaluationRequestSchema.safeParse({ action: "x".repeat(257), context: {} }).success,
    ).toBe(false);
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 100_000; i++) {
      const next = {};
      deep.a = next;
      deep = next;
    }
    const r = EvaluationRequestSchema.safeParse({ action: "read", context: root });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/nested deeper/);
    const wide = { xs: Array.from({ length: 20_000 }, (_, i) => i) };
    expect(EvaluationRequestSchema.safeParse({ action: "read", context: wide }).success).toBe(
      false,
    );
  });

  it("batches hold 1..1000 requests", () => {
    const one = { action: "a", context: {} };
    expect(EvaluationBatchSchema.safeParse({ requests: [one] }).success).toBe(true);
    expect(EvaluationBatchSchema.safeParse({ requests: [] }).success).toBe(false);
    expect(EvaluationBatchSchema.safeParse({ requests: Array(1001).fill(one) }).success).toBe(
      false,
    );
  });

  it("configuration defaults to strict with the spec's levels", () => {
    expect(PolicyConfigSchema.parse({})).toEqual({
      mode: "strict",
      classificationLevels: ["public", "internal", "confidential", "secret", "top_secret"],
    });
    expect(PolicyConfigSchema.safeParse({ classificationLevels: ["a", "a"] }).success).toBe(false);
  });
});
