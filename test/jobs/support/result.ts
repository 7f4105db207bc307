// Job results in tests: a well-formed body to sign or forward, and the check that a result the
// API returned verifies under the worker's key.
import { expect } from "vitest";
import { verifyEd25519 } from "../../../shared/crypto";
import { outputHash, type ResultBody, verifyResult } from "../../../shared/jobs/result";
import type { ApiJobResult } from "./harness";

export function resultBody(over: Partial<ResultBody> = {}, at = Date.now()): ResultBody {
  return {
    jobId: "j1",
    envelopeHash: "a".repeat(64),
    image: "sigil/busybox:1",
    tier: "gvisor",
    runtime: "runsc",
    status: "succeeded",
    reason: null,
    exitCode: 0,
    signal: null,
    stdoutHash: outputHash("hi\n"),
    stderrHash: outputHash(""),
    truncated: false,
    durationMs: 12,
    startedAt: new Date(at).toISOString(),
    finishedAt: new Date(at + 12).toISOString(),
    workerId: "w1",
    ...over,
  };
}

/** The result verifies under the worker's public key: signature, hash, job id and both outputs. */
export async function expectSignedBy(
  r: ApiJobResult,
  jobId: string,
  publicKey: Uint8Array,
): Promise<void> {
  const verdict = await verifyResult(
    { result: r.signed, resultHash: r.resultHash, kid: r.kid, signature: r.signature },
    publicKey,
    verifyEd25519,
    { jobId, output: { stdout: r.stdout, stderr: r.stderr } },
  );
  expect(verdict).toMatchObject({ ok: true, resultHash: r.resultHash });
}
