// POST /v1/risk/assess: the security model's score, level and tier (docs/sandbox.md), of the inputs
// as given. It is a calculator and grants nothing: what a job runs on is decided by POST /v1/jobs,
// whose codeTrustLevel is the submitting key's admin-set trust (docs/governance.md). Bounding this
// answer by the caller's trust would make it useless to admins and auditors weighing inputs for
// other keys, and would not make any job safer.
import { createRoute, z } from "@hono/zod-openapi";
import { assessRisk, type RiskThresholds, riskAssessSchema, riskInputOf } from "../../shared/risk";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { router } from "../router";

const assessmentSchema = z.object({
  score: z.number().min(0).max(1),
  level: z.enum(["low", "medium", "high"]),
  tier: z.enum(["docker", "gvisor"]),
});

const route = createRoute({
  method: "post",
  path: "/v1/risk/assess",
  tags: ["risk"],
  summary: "Score a task's risk and choose its sandbox tier",
  description:
    "The security model's formula over the inputs as given (networkAccess, filesystemAccess and externalApis may be booleans, true = 1). A calculator: a job's own tier comes from POST /v1/jobs, where codeTrustLevel is the submitting key's admin-set trust and declared inputs can only raise the score.",
  // Those who submit, run policy over, or report on tasks; not worker or gateway keys.
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: {
    body: { required: true, content: { "application/json": { schema: riskAssessSchema } } },
  },
  responses: {
    200: {
      description: "assessment",
      content: { "application/json": { schema: assessmentSchema } },
    },
    ...problemResponses(400, 401, 403),
  },
});

export function riskRoutes(thresholds: RiskThresholds) {
  return router().openapi(route, (c) =>
    c.json(assessRisk(riskInputOf(c.req.valid("json")), thresholds), 200),
  );
}
