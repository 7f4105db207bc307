// An unsigned job envelope as the jobs route builds it (docs/sandbox.md), for tests that sign,
// tamper with and verify envelopes without running the API: one fixed job, overridable field by
// field, valid for an hour from T0.
import { loadConfig } from "../../../shared/config";
import type { JobEnvelope } from "../../../shared/jobs/envelope";
import { jobRequestSchema, specFromRequest } from "../../../shared/jobs/schema";

export const T0 = Date.parse("2026-01-01T00:00:00.000Z");

export function testEnvelope(
  over: Partial<JobEnvelope> = {},
  command: string[] = ["echo", "hi"],
  jobId = "0190f0f0-0000-7000-8000-000000000001",
): JobEnvelope {
  const spec = specFromRequest(
    jobRequestSchema(loadConfig({}).sandbox).parse({ image: "sigil/busybox:1", command }),
  );
  return {
    type: "sigil.job-envelope.v1",
    jobId,
    submitter: { kid: "agent-kid", subject: "agent" },
    spec,
    image: spec.image,
    tier: "gvisor",
    risk: null,
    riskScore: null,
    riskLevel: null,
    policyMinimumTier: null,
    policyDecisionId: "d1",
    createdAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + 3600_000).toISOString(),
    ...over,
  };
}
