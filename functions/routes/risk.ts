// POST /v1/risk/assess: the security model's score, level and tier (SANDBOX.md).
import { createRoute, z } from "@hono/zod-openapi";
import { assessRisk, type RiskThresholds, riskInputSchema } from "../../shared/risk";
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
  // Those who submit, run policy over, or report on tasks; not worker or gateway keys.
  middleware: [requireRole("agent", "admin", "auditor")] as const,
  request: {
    body: { required: true, content: { "application/json": { schema: riskInputSchema } } },
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
  return router().openapi(route, (c) => c.json(assessRisk(c.req.valid("json"), thresholds), 200));
}
