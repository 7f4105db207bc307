// Who supplies the risk inputs (docs/governance.md "Risk is bounded by what an admin granted"):
// codeTrustLevel is the key's trust, a declaration only raises the score, the security model's
// booleans are accepted, and the worker's recomputation from a signed envelope agrees.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config";
import { createSigner, generateEd25519KeyPair, verifyEd25519 } from "../../shared/crypto";
import { type JobEnvelope, signEnvelope, verifyEnvelope } from "../../shared/jobs/envelope";
import { jobRequestSchema, specFromRequest } from "../../shared/jobs/schema";
import {
  boundedRisk,
  riskAssessSchema,
  riskDeclarationSchema,
  riskInputOf,
  riskScore,
  selectTier,
} from "../../shared/risk";

const zero = {
  dataSensitivity: 0,
  codeTrustLevel: 1,
  networkAccess: 0,
  filesystemAccess: 0,
  externalApis: 0,
};

describe("boundedRisk", () => {
  it("takes codeTrustLevel from the key, whatever the caller declares", () => {
    expect(boundedRisk({ codeTrustLevel: 1 }, { codeTrustLevel: 0 })).toEqual({
      ...zero,
      codeTrustLevel: 0,
    });
    expect(boundedRisk(undefined, { codeTrustLevel: 0.8 }).codeTrustLevel).toBe(0.8);
    // Volunteering less trust counts: it raises the score.
    expect(boundedRisk({ codeTrustLevel: 0.2 }, { codeTrustLevel: 0.8 }).codeTrustLevel).toBe(0.2);
  });

  it("takes the larger of declared and derived for every other input; booleans count 1 and 0", () => {
    expect(
      boundedRisk(
        { dataSensitivity: 0.2, networkAccess: false, filesystemAccess: true, externalApis: 0.5 },
        { codeTrustLevel: 1, dataSensitivity: 0.9, networkAccess: 1 },
      ),
    ).toEqual({
      dataSensitivity: 0.9,
      codeTrustLevel: 1,
      networkAccess: 1,
      filesystemAccess: 1,
      externalApis: 0.5,
    });
  });

  it("never scores below what the server derived, for any declaration", () => {
    const u = fc.double({ min: 0, max: 1, noNaN: true });
    const flag = fc.oneof(fc.boolean(), u);
    const declaration = fc.record(
      {
        dataSensitivity: u,
        codeTrustLevel: u,
        networkAccess: flag,
        filesystemAccess: flag,
        externalApis: flag,
      },
      { requiredKeys: [] },
    );
    const derived = fc.record({ codeTrustLevel: u, dataSensitivity: u, networkAccess: u });
    fc.assert(
      fc.property(declaration, derived, (d, s) => {
        const floor = riskScore(boundedRisk(undefined, s));
        expect(riskScore(boundedRisk(d, s))).toBeGreaterThanOrEqual(floor);
      }),
    );
  });

  it("declarations are bounded: numbers in [0, 1] or the three booleans, nothing else", () => {
    expect(riskDeclarationSchema.safeParse({ networkAccess: true }).success).toBe(true);
    expect(riskDeclarationSchema.safeParse({}).success).toBe(true);
    for (const bad of [
      { dataSensitivity: true },
      { codeTrustLevel: false },
      { networkAccess: "true" },
      { externalApis: 1.1 },
      { other: 1 },
    ]) {
      expect(riskDeclarationSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    const assess = riskAssessSchema.parse({ ...zero, networkAccess: true, externalApis: false });
    expect(riskInputOf(assess)).toEqual({ ...zero, networkAccess: 1 });
    expect(riskAssessSchema.safeParse({ ...zero, networkAccess: undefined }).success).toBe(false);
  });
});

describe("tier of untrusted code", () => {
  it("never below the default tier, even under thresholds that call its score low", () => {
    const untrusted = { ...zero, codeTrustLevel: 0 }; // 0.3
    const lax = { medium: 0.5, high: 0.8 };
    expect(selectTier(untrusted, { defaultTier: "gvisor", thresholds: lax })).toMatchObject({
      tier: "gvisor",
      assessment: { score: 0.3, level: "low" },
    });
    // Any trust at all, and the thresholds decide.
    expect(
      selectTier({ ...untrusted, codeTrustLevel: 0.1 }, { defaultTier: "gvisor", thresholds: lax })
        .tier,
    ).toBe("docker");
    // An operator who chose docker as the default keeps it.
    expect(selectTier(untrusted, { defaultTier: "docker", thresholds: lax }).tier).toBe("docker");
  });

  it("the worker refuses an envelope that puts untrusted code on docker", async () => {
    const config = loadConfig();
    const service = await createSigner((await generateEd25519KeyPair()).secretKey);
    const now = Date.now();
    const spec = specFromRequest(
      jobRequestSchema(config.sandbox).parse({ image: "sigil/busybox:1", command: ["true"] }),
    );
    const envelope = (tier: "docker" | "gvisor"): JobEnvelope => ({
      type: "sigil.job-envelope.v1",
      jobId: "0190f0f0-0000-7000-8000-00000000abcd",
      submitter: { kid: "agent", subject: "agent" },
      spec,
      image: spec.image,
      tier,
      risk: { ...zero, codeTrustLevel: 0 },
      riskScore: 0.3,
      riskLevel: "low",
      policyMinimumTier: null,
      policyDecisionId: "d",
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 60_000).toISOString(),
    });
    const opts = {
      serviceKey: async (kid: string) => (kid === service.kid ? service.publicKey : undefined),
      verify: verifyEd25519,
      sandbox: config.sandbox,
      defaultTier: "gvisor" as const,
      thresholds: { medium: 0.5, high: 0.8 },
    };
    expect(
      await verifyEnvelope(await signEnvelope(envelope("docker"), service), opts),
    ).toMatchObject({ ok: false, reason: "tier-mismatch" });
    expect(
      await verifyEnvelope(await signEnvelope(envelope("gvisor"), service), opts),
    ).toMatchObject({ ok: true });
  });
});
