// Envelope and result signing: round trips, every kind of tampering, typed rejection reasons.

import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config";
import { type Signer, verifyEd25519 } from "../../shared/crypto";
import { fromBase64Url, toBase64Url } from "../../shared/encoding";
import { envelopeChecks } from "../../shared/jobs";
import {
  type EnvelopeVerifyOptions,
  envelopeHash,
  type JobEnvelope,
  type SignedEnvelope,
  signEnvelope,
  verifyEnvelope,
} from "../../shared/jobs/envelope";
import { type ResultBody, signResult, verifyResult } from "../../shared/jobs/result";
import { jobRequestSchema, specFromRequest } from "../../shared/jobs/schema";
import { T0, testEnvelope } from "./support/envelope";
import { lowRisk, newSigner } from "./support/harness";
import { resultBody } from "./support/result";

const config = loadConfig({});
let service: Signer;
let worker: Signer;
let opts: EnvelopeVerifyOptions;

const envelope = (over: Partial<JobEnvelope> = {}) =>
  testEnvelope(over, ["echo", "hi"], "0190f0f0-0000-7000-8000-000000000001");

beforeAll(async () => {
  service = await newSigner();
  worker = await newSigner();
  opts = {
    ...envelopeChecks(
      config,
      async (kid) => (kid === service.kid ? service.publicKey : undefined),
      verifyEd25519,
    ),
    now: T0 + 1000,
  };
});

describe("job envelope", () => {
  it("verifies what the service signed, with the hash of its canonical JSON", async () => {
    const s = await signEnvelope(envelope(), service);
    const v = await verifyEnvelope(JSON.parse(JSON.stringify(s)), opts);
    expect(v).toMatchObject({ ok: true, envelopeHash: envelopeHash(s.envelope) });
    expect(envelopeHash(s.envelope)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("rejects any change to any signed field as bad-signature", async () => {
    const s = await signEnvelope(envelope(), service);
    const edits: ((e: JobEnvelope) => void)[] = [
      (e) => {
        e.spec.command = ["sh", "-c", "evil"];
      },
      (e) => {
        e.submitter.subject = "someone-else";
      },
      (e) => {
        e.expiresAt = new Date(T0 + 7200_000).toISOString();
      },
      (e) => {
        e.spec.limits.memoryMb = 16;
      },
      (e) => {
        e.policyDecisionId = "d2";
      },
    ];
    for (const edit of edits) {
      const t = structuredClone(s) as SignedEnvelope;
      edit(t.envelope);
      expect(await verifyEnvelope(t, opts)).toMatchObject({ ok: false, reason: "bad-signature" });
    }
    // Flip one byte of the decoded signature: always a different signature (overwriting the
    // last characters with a constant was the same signature about 1 time in 256).
    const sigBytes = fromBase64Url(s.signature);
    sigBytes[10]! ^= 0x01;
    const swapped = { ...s, signature: toBase64Url(sigBytes) };
    expect(await verifyEnvelope(swapped, opts)).toMatchObject({
      ok: false,
      reason: "bad-signature",
    });
  });

  it("types each other failure", async () => {
    const forger = await newSigner();
    expect(await verifyEnvelope(await signEnvelope(envelope(), forger), opts)).toMatchObject({
      ok: false,
      reason: "unknown-key",
    });
    // A forger who reuses the service's kid still fails on the signature.
    const lying = { ...(await signEnvelope(envelope(), forger)), kid: service.kid };
    expect(await verifyEnvelope(lying, opts)).toMatchObject({ reason: "bad-signature" });
    const s = await signEnvelope(envelope(), service);
    expect(await verifyEnvelope(s, { ...opts, now: T0 + 3600_000 })).toMatchObject({
      reason: "expired",
    });
    expect(await verifyEnvelope(s, { ...opts, now: T0 - 3600_000 })).toMatchObject({
      reason: "not-yet-valid",
    });
    expect(await verifyEnvelope({ envelope: {}, kid: "x", signature: "y" }, opts)).toMatchObject({
      reason: "malformed",
    });
    expect(await verifyEnvelope("nope", opts)).toMatchObject({ reason: "malformed" });
    // This worker allows only busybox.
    const narrow = { ...opts, sandbox: { ...config.sandbox, images: ["sigil/busybox:1"] } };
    const py = envelope({
      image: "sigil/python:1",
      spec: { ...envelope().spec, image: "sigil/python:1" },
    });
    expect(await verifyEnvelope(await signEnvelope(py, service), narrow)).toMatchObject({
      reason: "image-not-allowed",
    });
    // A spec above this node's limits (the service had a larger max).
    const big = envelope({
      spec: { ...envelope().spec, timeoutMs: config.sandbox.max_timeout_ms + 1 },
    });
    expect(await verifyEnvelope(await signEnvelope(big, service), opts)).toMatchObject({
      reason: "spec-invalid",
    });
  });

  it("recomputes the tier from the signed risk inputs and refuses a mismatch", async () => {
    const risk = lowRisk;
    const good = envelope({ risk, riskScore: 0, riskLevel: "low", tier: "docker" });
    expect(await verifyEnvelope(await signEnvelope(good, service), opts)).toMatchObject({
      ok: true,
    });
    // Signed, but the tier disagrees with the risk: a service bug or a stolen key's misuse.
    const low = envelope({
      risk: { ...risk, dataSensitivity: 1 },
      riskScore: 0.4,
      riskLevel: "medium",
      tier: "docker",
    });
    expect(await verifyEnvelope(await signEnvelope(low, service), opts)).toMatchObject({
      reason: "tier-mismatch",
    });
    // No risk → the default tier (gVisor); docker is a mismatch.
    expect(
      await verifyEnvelope(await signEnvelope(envelope({ tier: "docker" }), service), opts),
    ).toMatchObject({
      reason: "tier-mismatch",
    });
    // A policy minimum raises the tier; the worker applies it too.
    const raised = envelope({
      risk,
      riskScore: 0,
      riskLevel: "low",
      tier: "gvisor",
      policyMinimumTier: "gvisor",
    });
    expect(await verifyEnvelope(await signEnvelope(raised, service), opts)).toMatchObject({
      ok: true,
    });
    // And the configured thresholds matter: with medium at 0.5, a 0.4 score is low → docker.
    const thr = { ...opts, thresholds: { medium: 0.5, high: 0.8 } };
    const t = envelope({
      risk: { ...risk, dataSensitivity: 1 },
      riskScore: 0.4,
      riskLevel: "low",
      tier: "docker",
    });
    expect(await verifyEnvelope(await signEnvelope(t, service), thr)).toMatchObject({ ok: true });
  });
});

describe("job result", () => {
  const body = (over: Partial<ResultBody> = {}) => resultBody(over, T0);
  const expectJob = {
    jobId: "j1",
    envelope: { envelopeHash: "a".repeat(64), image: "sigil/busybox:1", tier: "gvisor" as const },
    output: { stdout: "hi\n", stderr: "" },
  };

  it("verifies under the worker key and matches the job", async () => {
    const s = await signResult(body(), worker);
    expect(await verifyResult(s, worker.publicKey, verifyEd25519, expectJob)).toMatchObject({
      ok: true,
      resultHash: s.resultHash,
    });
    expect(await verifyResult(s, service.publicKey, verifyEd25519, expectJob)).toMatchObject({
      reason: "bad-signature",
    });
  });

  it("catches tampering and mismatches with typed reasons", async () => {
    const s = await signResult(body(), worker);
    const tampered = { ...s, result: { ...s.result, exitCode: 1 } };
    expect(await verifyResult(tampered, worker.publicKey, verifyEd25519, expectJob)).toMatchObject({
      reason: "malformed",
    });
    const rehashed = await signResult(body({ exitCode: 1 }), worker);
    const spliced = { ...rehashed, signature: s.signature };
    expect(await verifyResult(spliced, worker.publicKey, verifyEd25519, expectJob)).toMatchObject({
      reason: "bad-signature",
    });
    expect(
      await verifyResult(s, worker.publicKey, verifyEd25519, { ...expectJob, jobId: "j2" }),
    ).toMatchObject({
      reason: "job-mismatch",
    });
    const otherEnv = await signResult(body({ envelopeHash: "b".repeat(64) }), worker);
    expect(await verifyResult(otherEnv, worker.publicKey, verifyEd25519, expectJob)).toMatchObject({
      reason: "envelope-mismatch",
    });
    const runc = await signResult(body({ runtime: "runc" }), worker);
    expect(await verifyResult(runc, worker.publicKey, verifyEd25519, expectJob)).toMatchObject({
      reason: "runtime-mismatch",
    });
    expect(
      await verifyResult(s, worker.publicKey, verifyEd25519, {
        ...expectJob,
        output: { stdout: "bye\n", stderr: "" },
      }),
    ).toMatchObject({ reason: "output-mismatch" });
  });
});

describe("job request schema", () => {
  const schema = jobRequestSchema(config.sandbox);
  it("applies the configured defaults and bounds", () => {
    const r = schema.parse({ image: "sigil/busybox:1", command: ["true"] });
    expect(r.timeoutMs).toBe(config.sandbox.default_timeout_ms);
    expect(r.limits).toEqual({ memoryMb: 512, cpus: 0.5, pids: 128, outputBytes: 1024 * 1024 });
    expect(
      schema.safeParse({ image: "sigil/busybox:1", command: ["true"], limits: { cpus: 1 } })
        .success,
    ).toBe(false);
  });
  it("refuses ambiguous, unsafe or oversized input", () => {
    const bad: unknown[] = [
      { image: "sigil/busybox:1" },
      { image: "sigil/busybox:1", command: ["true"], code: "x", language: "sh" },
      { image: "sigil/busybox:1", code: "print(1)" },
      { image: "sigil/busybox:1", command: ["true"], files: { "../etc/passwd": "x" } },
      { image: "sigil/busybox:1", command: ["true"], files: { "/abs": "x" } },
      { image: "sigil/busybox:1", command: ["true"], files: { ".sigil/run": "x" } },
      { image: "sigil/busybox:1", command: ["true"], env: { "BAD-NAME": "x" } },
      { image: "sigil/busybox:1", command: ["true"], extra: 1 },
      { image: "sigil/busybox:1", command: ["true"], risk: { dataSensitivity: 2 } },
      { image: "sigil/busybox:1", command: Array.from({ length: 300 }, () => "a") },
      { image: "sigil/busybox:1", command: ["true"], stdin: "x".repeat(1024 * 1024 + 1) },
    ];
    for (const b of bad)
      expect(schema.safeParse(b).success, JSON.stringify(b).slice(0, 80)).toBe(false);
  });
  // Egress (docs/sandbox.md): the spec carries the rules as parsed; submitJob admits them by
  // configuration and policy before anything is signed (test/jobs/egress-admission.test.ts).
  it("parses network rules and the spec carries them, with the protocol defaulted", () => {
    const r = schema.parse({
      image: "sigil/busybox:1",
      command: ["true"],
      network: { allow: [{ domain: "example.com", ports: [443] }] },
    });
    expect(specFromRequest(r).network.allow).toEqual([
      { domain: "example.com", ports: [443], protocol: "tcp" },
    ]);
  });
});
