// The three policies of the security model: each rule, triggered and not, gives the
// decision docs/policy-language.md specifies.
import { describe, expect, it } from "vitest";
import { type EvaluationRequest, type JsonObject, parse } from "../../shared/policy";
import { SECURITY_MODEL_POLICIES, setOf } from "./fixtures";

const set = setOf({ "security-model": SECURITY_MODEL_POLICIES });
const ev = (req: EvaluationRequest) => set.evaluate(req);

describe("the security model's policies parse", () => {
  it("has three policies with allow, deny and require rules", () => {
    const doc = parse(SECURITY_MODEL_POLICIES);
    expect(doc.policies.map((p) => p.name)).toEqual([
      "secure_data_access",
      "data_flow_control",
      "resource_governance",
    ]);
    for (const p of doc.policies)
      expect(p.rules.map((r) => r.kind)).toEqual(["allow", "deny", "require"]);
  });
});

describe("secure_data_access", () => {
  const ctx = (
    over: Partial<Record<"user" | "session" | "data", JsonObject>> = {},
  ): JsonObject => ({
    user: {
      clearance: "secret",
      need_to_know: ["finance", "hr"],
      background_check: { current: true },
    },
    session: { mfa_verified: true, secure_connection: true },
    data: { classification: "finance" },
    ...over,
  });
  const read = (context: JsonObject): EvaluationRequest => ({
    action: "read",
    resource: "sensitive_data",
    context,
  });

  it("allow read(sensitive_data): granted with the require's obligation", () => {
    const d = ev(read(ctx()));
    expect(d.decision).toBe("allow_with_conditions");
    expect(d.enforced).toBe(true);
    expect(d.conditions).toEqual([{ name: "audit_trail", value: "detailed" }]);
    expect(d.matched).toEqual([
      {
        document: "security-model",
        policy: "secure_data_access",
        rule: "allow: read(sensitive_data)",
        effect: "allow",
      },
      {
        document: "security-model",
        policy: "secure_data_access",
        rule: "require",
        effect: "require",
      },
    ]);
  });

  it("top_secret clearance also satisfies >= secret (level order)", () => {
    const d = ev(
      read(
        ctx({
          user: {
            clearance: "top_secret",
            need_to_know: ["finance"],
            background_check: { current: true },
          },
        }),
      ),
    );
    expect(d.decision).toBe("allow_with_conditions");
  });

  it("allow read(sensitive_data) not triggered: default deny", () => {
    const d = ev(
      read(
        ctx({
          user: {
            clearance: "confidential",
            need_to_know: ["finance"],
            background_check: { current: true },
          },
        }),
      ),
    );
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("no policy allows read(sensitive_data)");
    expect(d.matched).toEqual([]);
    const notNeeded = ev(read(ctx({ data: { classification: "legal" } })));
    expect(notNeeded.decision).toBe("deny");
    const noMfa = ev(read(ctx({ session: { mfa_verified: false, secure_connection: true } })));
    expect(noMfa.decision).toBe("deny");
  });

  it("the allow does not match another resource", () => {
    const d = ev({ ...read(ctx()), resource: "public_data" });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("no policy allows read(public_data)");
  });

  it("deny export(data) triggered by PII", () => {
    const d = ev({ action: "export", resource: "data", context: { data: { contains_pii: true } } });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("denied by secure_data_access: deny: export(data)");
    expect(d.matched).toEqual([
      {
        document: "security-model",
        policy: "secure_data_access",
        rule: "deny: export(data)",
        effect: "deny",
      },
    ]);
  });

  it("deny export(data) not triggered: still denied by default, not by the rule", () => {
    const d = ev({
      action: "export",
      resource: "data",
      context: { data: { contains_pii: false } },
    });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("no policy allows export(data)");
    expect(d.matched).toEqual([]);
  });

  it("require: an unmet requirement stops the grant and is named", () => {
    const d = ev(read(ctx({ session: { mfa_verified: true, secure_connection: false } })));
    expect(d.decision).toBe("deny");
    expect(d.unmet).toEqual([
      {
        document: "security-model",
        policy: "secure_data_access",
        rule: "require",
        message: "session.secure_connection",
      },
    ]);
    expect(d.reason).toContain("session.secure_connection");
    const stale = ev(
      read(
        ctx({
          user: {
            clearance: "secret",
            need_to_know: ["finance"],
            background_check: { current: false },
          },
        }),
      ),
    );
    expect(stale.decision).toBe("deny");
    expect(stale.unmet?.[0]?.message).toBe("user.background_check.current");
  });

  it("require: a missing attribute is an evaluation error (fail closed)", () => {
    const d = ev(read(ctx({ user: { clearance: "secret", need_to_know: ["finance"] } })));
    expect(d.decision).toBe("deny");
    expect(d.errors?.[0]?.message).toMatch(/background_check.*absent/);
    expect(d.reason).toMatch(/^evaluation error/);
  });
});

describe("data_flow_control", () => {
  const ctx: JsonObject = {
    source: { classification: "internal" },
    target: { classification: "secret" },
    user: { transform_permissions: ["anonymize", "aggregate"] },
    operation: { type: "anonymize" },
  };

  it("allow transform(data) triggered: plain allow", () => {
    const d = ev({ action: "transform", resource: "data", context: ctx });
    expect(d.decision).toBe("allow");
    expect(d.conditions).toBeUndefined();
    expect(d.matched).toEqual([
      {
        document: "security-model",
        policy: "data_flow_control",
        rule: "allow: transform(data)",
        effect: "allow",
      },
    ]);
  });

  it("allow transform(data) not triggered: flowing down in classification is denied", () => {
    const d = ev({
      action: "transform",
      resource: "data",
      context: { ...ctx, source: { classification: "top_secret" } },
    });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("no policy allows transform(data)");
    const noPerm = ev({
      action: "transform",
      resource: "data",
      context: { ...ctx, operation: { type: "join" } },
    });
    expect(noPerm.decision).toBe("deny");
  });

  it("deny aggregate(datasets) triggered when any dataset exceeds the privacy budget", () => {
    const d = ev({
      action: "aggregate",
      resource: "datasets",
      context: {
        datasets: [{ privacy_level: 1 }, { privacy_level: 5 }],
        operation: { privacy_budget: 3 },
      },
    });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("denied by data_flow_control: deny: aggregate(datasets)");
  });

  it("deny aggregate(datasets) not triggered: default deny (no allow for aggregate)", () => {
    const d = ev({
      action: "aggregate",
      resource: "datasets",
      context: {
        datasets: [{ privacy_level: 1 }, { privacy_level: 3 }],
        operation: { privacy_budget: 3 },
      },
    });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("no policy allows aggregate(datasets)");
    expect(d.matched).toEqual([]);
  });

  it("require differential_privacy for statistical_operations: an obligation when the tag is present", () => {
    const d = ev({
      action: "transform",
      resource: "data",
      tags: ["statistical_operations"],
      context: ctx,
    });
    expect(d.decision).toBe("allow_with_conditions");
    expect(d.conditions).toEqual([{ name: "differential_privacy" }]);
    expect(d.matched.map((m) => [m.policy, m.rule, m.effect])).toEqual([
      ["data_flow_control", "allow: transform(data)", "allow"],
      ["data_flow_control", "require: differential_privacy for statistical_operations", "require"],
    ]);
  });

  it("the require alone grants nothing", () => {
    const d = ev({ action: "statistical_operations", context: {} });
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("no policy allows statistical_operations");
  });
});

describe("resource_governance", () => {
  const ctx: JsonObject = {
    user: { resource_quota: { remaining: 16 }, max_priority: 5 },
    resources: { total: 8 },
    operation: { priority: 3 },
  };
  const allocate = (tags: string[] = [], extra: JsonObject = {}): EvaluationRequest => ({
    action: "allocate",
    resource: "resources",
    tags,
    context: { ...ctx, ...extra },
  });

  it("allow allocate(resources) triggered: allow", () => {
    expect(ev(allocate()).decision).toBe("allow");
  });

  it("allow allocate(resources) not triggered: over quota or over priority", () => {
    expect(ev(allocate([], { resources: { total: 32 } })).decision).toBe("deny");
    expect(ev(allocate([], { operation: { priority: 9 } })).decision).toBe("deny");
  });

  it("deny long_running_operations (a tag) triggered during maintenance: deny beats the allow", () => {
    const d = ev(allocate(["long_running_operations"], { system: { maintenance_mode: true } }));
    expect(d.decision).toBe("deny");
    expect(d.reason).toBe("denied by resource_governance: deny: long_running_operations");
  });

  it("deny long_running_operations also matches the action name", () => {
    const d = ev({
      action: "long_running_operations",
      context: { system: { maintenance_mode: true } },
    });
    expect(d.matched[0]?.rule).toBe("deny: long_running_operations");
  });

  it("deny long_running_operations not triggered outside maintenance", () => {
    const d = ev(allocate(["long_running_operations"], { system: { maintenance_mode: false } }));
    expect(d.decision).toBe("allow");
  });

  it("deny long_running_operations without `system` in context fails closed", () => {
    const d = ev(allocate(["long_running_operations"]));
    expect(d.decision).toBe("deny");
    expect(d.errors?.[0]?.message).toMatch(/'system' is absent/);
  });

  it("require supervisor_approval for high_memory_operations → RequireApproval", () => {
    const d = ev(allocate(["high_memory_operations"]));
    expect(d.decision).toBe("require_approval");
    expect(d.approver).toBe("supervisor");
    expect(d.conditions).toEqual([{ name: "supervisor_approval" }]);
  });

  it("approval is not required without the tag", () => {
    const d = ev(allocate(["low_memory_operations"]));
    expect(d.decision).toBe("allow");
    expect(d.approver).toBeUndefined();
  });
});

describe("the same policies as separate documents", () => {
  it("give the same decisions", () => {
    const doc = parse(SECURITY_MODEL_POLICIES);
    const lines = SECURITY_MODEL_POLICIES.split("\n");
    const parts: Record<string, string> = {};
    doc.policies.forEach((p, i) => {
      const end = doc.policies[i + 1]?.pos.line ?? lines.length + 1;
      parts[p.name] = lines.slice(p.pos.line - 1, end - 1).join("\n");
    });
    const split = setOf(parts);
    const req: EvaluationRequest = {
      action: "allocate",
      resource: "resources",
      tags: ["high_memory_operations"],
      context: {
        user: { resource_quota: { remaining: 2 }, max_priority: 1 },
        resources: { total: 1 },
        operation: { priority: 1 },
      },
    };
    const a = set.evaluate(req);
    const b = split.evaluate(req);
    expect(b.decision).toBe(a.decision);
    expect(b.matched.map((m) => m.rule)).toEqual(a.matched.map((m) => m.rule));
    expect(b.matched[0]?.document).toBe("resource_governance");
  });
});
