// The Node job gateway, driven by the edge's own client (GatewayJobsBackend): only a `gateway`
// key may call it, and it queues only envelopes that key signed itself.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayJobsBackend } from "../../functions/edge/jobs/gateway";
import { MAX_JOB_WAIT_MS } from "../../functions/routes/jobs";
import { loadConfig } from "../../shared/config";
import { toBase64Url } from "../../shared/encoding";
import {
  envelopeHash,
  type JobEnvelope,
  type JobSpec,
  jobRequestSchema,
  outputHash,
  signEnvelope,
  signResult,
  specFromRequest,
} from "../../shared/jobs";
import { resultBody } from "../jobs/support/result";
import { newKey, registeredKey, startTarget, type Target, type TestKey } from "../support/targets";

const config = loadConfig();

/** `spec` defaults to a complete one, as the jobs route signs it. */
function envelopeFor(jobId: string, submitter: TestKey, spec?: JobSpec): JobEnvelope {
  const req = jobRequestSchema(config.sandbox).parse({
    image: "sigil/busybox:1",
    command: ["true"],
  });
  const now = Date.now();
  return {
    type: "sigil.job-envelope.v1",
    jobId,
    submitter: { kid: submitter.kid, subject: "edge-agent" },
    spec: spec ?? specFromRequest(req),
    image: "sigil/busybox:1",
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

describe("Node job gateway", () => {
  let t: Target;
  let gateway: TestKey;
  beforeAll(async () => {
    t = await startTarget("node");
    gateway = await registeredKey(t.client(t.admin), "gateway", "edge");
  }, 60_000);
  afterAll(async () => t?.stop());

  it("queues an envelope the gateway signed, and serves get/wait for it", async () => {
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    const env = envelopeFor(`gw-${Date.now()}`, gateway);
    const signed = await signEnvelope(env, gateway.signer);
    const rec = await backend.submit(signed, envelopeHash(env));
    expect(rec).toMatchObject({ jobId: env.jobId, status: "queued", tier: "gvisor" });
    expect((await backend.get(env.jobId))?.envelopeHash).toBe(envelopeHash(env));
    expect((await backend.wait(env.jobId, 10))?.status).toBe("queued");
    // The gateway key is published, so workers accept the envelopes it signs.
    const { keys } = await t.client(t.admin).wellKnownKeys();
    expect(keys.some((k) => k.kid === gateway.kid && k.role === "gateway")).toBe(true);
  });

  it("refuses a signed spec without the values its defaults fill in, and queues nothing", async () => {
    // The verifier would fill the missing limits in from [sandbox], so the envelope it checked
    // would not be the one signed: stored, it would be covered by no signature.
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    const spec = {
      image: "sigil/busybox:1",
      command: ["true"],
      timeoutMs: config.sandbox.default_timeout_ms,
      network: { allow: [] },
    } as Omit<JobSpec, "limits"> as JobSpec;
    const env = envelopeFor(`gw-partial-${Date.now()}`, gateway, spec);
    await expect(
      backend.submit(await signEnvelope(env, gateway.signer), envelopeHash(env)),
    ).rejects.toThrow(/403/);
    expect(await backend.get(env.jobId)).toBeNull();
  });

  it("refuses an envelope signed by another key, and a wrong hash", async () => {
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    const other = await newKey();
    const env = envelopeFor(`gw-forged-${Date.now()}`, other);
    await expect(
      backend.submit(await signEnvelope(env, other.signer), envelopeHash(env)),
    ).rejects.toThrow(/403/);
    const env2 = envelopeFor(`gw-hash-${Date.now()}`, gateway);
    await expect(
      backend.submit(await signEnvelope(env2, gateway.signer), "0".repeat(64)),
    ).rejects.toThrow(/403/);
    expect(await backend.get(env.jobId)).toBeNull();
  });

  it("is closed to every role but gateway", async () => {
    const agent = await registeredKey(t.client(t.admin), "agent", "a");
    const asAgent = new GatewayJobsBackend({ baseUrl: t.url, signer: agent.signer });
    await expect(asAgent.get("x")).rejects.toThrow(/403/);
  });

  it("takes the longest wait the public route allows, which the edge passes through", async () => {
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    expect(await backend.wait(`gw-none-${Date.now()}`, MAX_JOB_WAIT_MS)).toBeNull();
  });

  it("takes a forwarded result report as large as a worker may send directly", async () => {
    const backend = new GatewayJobsBackend({ baseUrl: t.url, signer: gateway.signer });
    const stdout = "o".repeat(config.sandbox.output_bytes);
    const stderr = "e".repeat(Math.floor(config.sandbox.output_bytes / 2));
    expect(stdout.length + stderr.length).toBeGreaterThan(config.server.body_limit_bytes);
    // Signed by a worker key of the edge's (Node does not know it): the gateway verifies the
    // result under the forwarded key, whose thumbprint is its kid.
    const worker = await newKey();
    const signed = await signResult(
      resultBody({
        jobId: `gw-big-${Date.now()}`,
        stdoutHash: outputHash(stdout),
        stderrHash: outputHash(stderr),
      }),
      worker.signer,
    );
    // No such job, so nothing is stored; what matters is that the body got past the limit.
    await expect(
      backend.finish(
        signed.result.jobId,
        { ...signed, stdout, stderr },
        { attempt: 1, workerKid: worker.kid, workerPublicKey: toBase64Url(worker.publicKey) },
      ),
    ).resolves.toMatchObject({ outcome: "missing" });
  });
});
