// A well-formed job result body for tests that sign or forward one; `over` changes any field.
import { outputHash, type ResultBody } from "../../../shared/jobs/result";

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
