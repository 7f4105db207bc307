// Tool verification (SchemaPin + strict TOFU) and tool review (docs/schemapin.md,
// docs/http-api.md).
import { createRoute, z } from "@hono/zod-openapi";
import {
  domainSchema,
  putPinRequestSchema,
  reviewTool,
  reviewToolRequestSchema,
  type ToolAuditEvent,
  type ToolVerificationService,
  toolIdSchema,
  verifyToolRequestSchema,
} from "../../shared/schemapin";
import type { AuditFn } from "../audit-sink";
import { securityEvent } from "../audit-sink";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { router } from "../router";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
const anyObject = z.record(z.string(), z.unknown());

const verifyRoute = createRoute({
  method: "post",
  path: "/v1/tools/verify",
  tags: ["tools"],
  summary: "Verify a tool schema's SchemaPin signature against its provider key, with strict TOFU",
  middleware: [requireRole("agent", "admin")] as const,
  request: { body: { required: true, ...json(verifyToolRequestSchema) } },
  responses: {
    200: { description: "verification result", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 503),
  },
});

const pinParams = z.object({ domain: domainSchema });
const pinQuery = z.object({ toolId: toolIdSchema.optional() });

const putPinRoute = createRoute({
  method: "put",
  path: "/v1/tools/pins/{domain}",
  tags: ["tools"],
  summary: "Pin a provider key for a domain (or one tool of it)",
  middleware: [requireRole("admin")] as const,
  request: { params: pinParams, body: { required: true, ...json(putPinRequestSchema) } },
  responses: {
    200: { description: "pin unchanged", ...json(anyObject) },
    201: { description: "pinned", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 409),
  },
});

const getPinRoute = createRoute({
  method: "get",
  path: "/v1/tools/pins/{domain}",
  tags: ["tools"],
  summary: "List the pins of a domain",
  middleware: [requireRole("admin")] as const, // docs/http-api.md: pins are admin's, reads included
  request: { params: pinParams },
  responses: {
    200: { description: "pins", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 404),
  },
});

const deletePinRoute = createRoute({
  method: "delete",
  path: "/v1/tools/pins/{domain}",
  tags: ["tools"],
  summary: "Remove a pin (domain-wide, or one tool's with ?toolId=)",
  middleware: [requireRole("admin")] as const,
  request: { params: pinParams, query: pinQuery },
  responses: {
    200: { description: "removed", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 404),
  },
});

const reviewRoute = createRoute({
  method: "post",
  path: "/v1/tools/review",
  tags: ["tools"],
  summary: "Static risk review of a tool schema",
  middleware: [requireRole("agent", "admin")] as const,
  request: { body: { required: true, ...json(reviewToolRequestSchema) } },
  responses: {
    200: { description: "review", ...json(anyObject) },
    ...problemResponses(400, 401, 403),
  },
});

const eventTypes: Record<ToolAuditEvent["type"], string> = {
  "tool.verify": "tool.verified",
  "tool.pin.put": "tool.pinned",
  "tool.pin.delete": "tool.unpinned",
  "tool.pin.confirm": "tool.pinned",
};

export function toolRoutes(deps: { tools: ToolVerificationService; audit: AuditFn }) {
  const { tools, audit } = deps;
  const record = (agentId: string, e: ToolAuditEvent | null) =>
    e
      ? audit({ eventType: eventTypes[e.type], agentId, details: { ...e } })
      : Promise.resolve(null);
  const adminError = (r: { error: string; detail: string; existing?: unknown }): Problem => {
    if (r.error === "conflict") {
      return new Problem(409, "pin-conflict", "A different key is pinned", r.detail, undefined, {
        existing: r.existing,
      });
    }
    if (r.error === "not_found") return new Problem(404, "not-found", "Not found", r.detail);
    return new Problem(400, "validation", "Invalid pin request", r.detail);
  };

  return router()
    .openapi(verifyRoute, async (c) => {
      const who = c.get("subject") ?? "unknown";
      const outcome = await tools.verify(c.req.valid("json")).catch((e: unknown) => {
        throw new Problem(503, "unavailable", "Pin store unavailable", (e as Error).message);
      });
      await record(who, outcome.auditEvent);
      for (const s of outcome.securityEvents) {
        await securityEvent(audit, who, s.type, s.severity, s.detail, { ...s });
      }
      return c.json(outcome.response as unknown as Record<string, unknown>, 200);
    })
    .openapi(putPinRoute, async (c) => {
      const { domain } = c.req.valid("param");
      const r = await tools.putPin(domain, c.req.valid("json"));
      if (!r.ok) throw adminError(r);
      await record(c.get("subject") ?? "admin", r.auditEvent);
      return c.json(
        { pin: r.pin, created: r.created } as Record<string, unknown>,
        r.created ? 201 : 200,
      );
    })
    .openapi(getPinRoute, async (c) => {
      const { domain } = c.req.valid("param");
      const r = await tools.listPins(domain);
      if (!r.ok) throw adminError(r);
      return c.json({ domain, pins: r.pins } as Record<string, unknown>, 200);
    })
    .openapi(deletePinRoute, async (c) => {
      const { domain } = c.req.valid("param");
      const { toolId } = c.req.valid("query");
      const r = await tools.deletePin(domain, toolId);
      if (!r.ok) throw adminError(r);
      await record(c.get("subject") ?? "admin", r.auditEvent);
      if (!r.deleted)
        throw new Problem(404, "not-found", "Not found", `no pin for ${toolId ?? "*"}@${domain}`);
      return c.json({ deleted: true } as Record<string, unknown>, 200);
    })
    .openapi(reviewRoute, async (c) => {
      const review = reviewTool(c.req.valid("json").schema);
      await audit({
        eventType: "tool.reviewed",
        agentId: c.get("subject") ?? "unknown",
        details: {
          riskScore: review.riskScore,
          recommendation: review.recommendation,
          findings: review.findings.length,
        },
      });
      return c.json(review as unknown as Record<string, unknown>, 200);
    });
}
