// The Node job gateway stores an envelope exactly as it verified it: one whose signed spec leaves
// out values the spec's defaults fill in would verify as a different envelope than the one
// signed, so it is refused rather than stored in a form no signature covers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayJobsBackend } from "../../functions/edge/jobs/gateway";
import { loadConfig } from "../../shared/config";
import { envelopeHash, type JobEnvelope, type JobSpec, signEnvelope } from "../../shared/jobs";
import { registeredKey, startTarget, type Target, type TestKey } from "../support/targets";

const config = loadConfig();

function envelopeWith(jobId: string, submitter: TestKey, spec: JobSpec): JobEnvelope {
  const now = Date.now();
  return {
    type: "sigil.job-envelope.v1",
    jobId,
    submitter: { kid: submitter.kid, subject: "edge-agent" },
    spec,
    image: spec.image,
    tier: "gvisor",
    risk: null,
    riskScore: null,
    riskLevel: null,
    policyMinimumTier: null,
    policyDecisionId: "0192a0a0-0000-7000-8000-000000000000",
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 3_600_000).toISOString(),
  };
}

describe("Node job gateway: the stored envelope is the signed one", () => {
  let t: Target;
  let gateway: TestKey;
  beforeAll(async () => {
    t = await startTarget("node");
    gateway = await registeredKey(t.client(t.admin), "gateway", "edge");
  }, 60_000);
  afterAll(async () => t?.stop());

  it("refuses a signed spec without the values its defaults fill in, and queues nothing", async () => {
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    // No limits: the verifier would fill them in from [sandbox], changing the signed envelope.
    const spec = {
      image: "sigil/busybox:1",
      command: ["true"],
      timeoutMs: config.sandbox.default_timeout_ms,
      network: { allow: [] },
    } as Omit<JobSpec, "limits"> as JobSpec;
    const env = envelopeWith(`gw-partial-${Date.now()}`, gateway, spec);
    await expect(
      backend.submit(await signEnvelope(env, gateway.signer), envelopeHash(env)),
    ).rejects.toThrow(/403/);
    expect(await backend.get(env.jobId)).toBeNull();
  });

  it("queues a complete spec and stores the envelope under the hash that was signed", async () => {
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    const s = config.sandbox;
    const spec: JobSpec = {
      image: "sigil/busybox:1",
      command: ["true"],
      timeoutMs: s.default_timeout_ms,
      limits: { memoryMb: s.memory_mb, cpus: s.cpus, pids: s.pids, outputBytes: s.output_bytes },
      network: { allow: [] },
    };
    const env = envelopeWith(`gw-full-${Date.now()}`, gateway, spec);
    await backend.submit(await signEnvelope(env, gateway.signer), envelopeHash(env));
    expect((await backend.get(env.jobId))?.envelopeHash).toBe(envelopeHash(env));
  });
});
