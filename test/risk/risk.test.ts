import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assessRisk, riskInputSchema, riskScore, selectTier } from "../../shared/risk";

const zero = {
  dataSensitivity: 0,
  codeTrustLevel: 1,
  networkAccess: 0,
  filesystemAccess: 0,
  externalApis: 0,
};

describe("risk", () => {
  it("applies the security model's formula", () => {
    expect(riskScore(zero)).toBe(0);
    expect(riskScore({ ...zero, dataSensitivity: 1, codeTrustLevel: 0 })).toBe(0.7);
    expect(
      riskScore({
        dataSensitivity: 1,
        codeTrustLevel: 0,
        networkAccess: 1,
        filesystemAccess: 1,
        externalApis: 1,
      }),
    ).toBe(1);
    expect(
      riskScore({ ...zero, dataSensitivity: 0.5, codeTrustLevel: 0.5, networkAccess: 1 }),
    ).toBe(0.45);
  });

  it("levels and tiers at the thresholds: low < 0.3 <= medium < 0.7 <= high", () => {
    expect(assessRisk({ ...zero, codeTrustLevel: 0.1 })).toMatchObject({
      level: "low",
      tier: "docker",
    }); // 0.27
    expect(assessRisk({ ...zero, codeTrustLevel: 0 })).toMatchObject({
      score: 0.3,
      level: "medium",
      tier: "gvisor",
    });
    expect(assessRisk({ ...zero, dataSensitivity: 1, codeTrustLevel: 0 })).toMatchObject({
      level: "high",
      tier: "gvisor",
    });
    expect(assessRisk({ ...zero, codeTrustLevel: 0 }, { medium: 0.4, high: 0.8 }).level).toBe(
      "low",
    );
  });

  it("rejects out-of-range and wrongly typed inputs instead of clamping", () => {
    expect(riskInputSchema.safeParse({ ...zero, dataSensitivity: 1.5 }).success).toBe(false);
    expect(riskInputSchema.safeParse({ ...zero, dataSensitivity: -0.1 }).success).toBe(false);
    expect(riskInputSchema.safeParse({ ...zero, networkAccess: "1" }).success).toBe(false);
    expect(riskInputSchema.safeParse({ ...zero, networkAccess: Number.NaN }).success).toBe(false);
    expect(riskInputSchema.safeParse({ ...zero, extra: 1 }).success).toBe(false);
    const { externalApis: _, ...missing } = zero;
    expect(riskInputSchema.safeParse(missing).success).toBe(false);
  });

  it("no assessment → the configured default tier; a policy raises, never lowers", () => {
    expect(selectTier(undefined, { defaultTier: "gvisor" }).tier).toBe("gvisor");
    expect(selectTier(zero, { defaultTier: "gvisor" }).tier).toBe("docker");
    expect(selectTier(zero, { defaultTier: "gvisor", policyMinimum: "gvisor" }).tier).toBe(
      "gvisor",
    );
    const high = { ...zero, dataSensitivity: 1, codeTrustLevel: 0 };
    expect(selectTier(high, { defaultTier: "docker", policyMinimum: "docker" }).tier).toBe(
      "gvisor",
    );
  });

  it("score is always in [0, 1] and monotone in sensitivity", () => {
    const u = fc.double({ min: 0, max: 1, noNaN: true });
    fc.assert(
      fc.property(u, u, u, u, u, (a, b, c, d, e) => {
        const i = {
          dataSensitivity: a,
          codeTrustLevel: b,
          networkAccess: c,
          filesystemAccess: d,
          externalApis: e,
        };
        const s = riskScore(i);
        return s >= 0 && s <= 1 && riskScore({ ...i, dataSensitivity: Math.min(1, a + 0.1) }) >= s;
      }),
    );
  });
});
