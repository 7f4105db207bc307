// The audit trail over HTTP (docs/http-api.md "Audit", docs/audit.md): append, read, verify, signed
// checkpoints, Merkle proofs, NDJSON export.
import { createRoute, z } from "@hono/zod-openapi";
import { stream } from "hono/streaming";
import {
  AuditAppendInputSchema,
  AuditError,
  type AuditService,
  isClientEventType,
} from "../../shared/audit";
import { authProblem } from "../middleware/auth";
import { charge } from "../middleware/limits";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { router } from "../router";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
const index = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const anyObject = z.record(z.string(), z.unknown());

export function auditProblem(e: unknown): never {
  if (e instanceof AuditError) {
    switch (e.code) {
      case "invalid-input":
      case "out-of-range":
        throw new Problem(400, "validation", "Invalid audit request", e.message);
      case "not-found":
        throw new Problem(404, "not-found", "Not found", e.message);
      case "replay":
        throw authProblem("replay", "nonce already used");
      default:
        throw new Problem(503, "unavailable", "Audit trail unavailable", `${e.code}: ${e.message}`);
    }
  }
  throw e;
}

const appendRoute = createRoute({
  method: "post",
  path: "/v1/audit/events",
  tags: ["audit"],
  summary:
    "Append an event (acknowledged once durably stored). Clients write only agent.*, app.*, tool.invoked, message.routed and resource.allocated; every other type is Sigil's own (403)",
  middleware: [requireRole("agent", "admin")] as const,
  request: { body: { required: true, ...json(AuditAppendInputSchema) } },
  responses: {
    201: { description: "appended", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const listRoute = createRoute({
  method: "get",
  path: "/v1/audit/events",
  tags: ["audit"],
  summary: "Read events in index order",
  middleware: [requireRole("auditor", "admin")] as const,
  request: {
    query: z.object({
      from: index.optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
    }),
  },
  responses: {
    200: {
      description: "events",
      ...json(z.object({ events: z.array(anyObject), next: z.number().nullable() })),
    },
    ...problemResponses(400, 401, 403),
  },
});
const getRoute = createRoute({
  method: "get",
  path: "/v1/audit/events/{index}",
  tags: ["audit"],
  summary: "One event",
  middleware: [requireRole("auditor", "admin")] as const,
  request: { params: z.object({ index }) },
  responses: {
    200: { description: "event", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 404),
  },
});
const verifyRoute = createRoute({
  method: "get",
  path: "/v1/audit/verify",
  tags: ["audit"],
  summary: "Recompute hashes, links, order and signatures; report the first invalid index",
  middleware: [requireRole("auditor", "admin")] as const,
  request: { query: z.object({ from: index.optional(), to: index.optional() }) },
  responses: {
    200: { description: "report", ...json(anyObject) },
    ...problemResponses(400, 401, 403),
  },
});
const checkpointRoute = createRoute({
  method: "get",
  path: "/v1/audit/checkpoint",
  tags: ["audit"],
  summary: "Signed tree head (also as a C2SP signed-note checkpoint)",
  middleware: [requireRole("auditor", "admin", "agent")] as const,
  responses: {
    200: { description: "checkpoint", ...json(anyObject) },
    ...problemResponses(401, 403, 503),
  },
});
const inclusionRoute = createRoute({
  method: "get",
  path: "/v1/audit/proofs/inclusion",
  tags: ["audit"],
  summary: "RFC 9162 inclusion proof of an event in a tree size",
  middleware: [requireRole("auditor", "admin", "agent")] as const,
  request: { query: z.object({ index, treeSize: index.optional() }) },
  responses: {
    200: { description: "proof", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 404),
  },
});
const consistencyRoute = createRoute({
  method: "get",
  path: "/v1/audit/proofs/consistency",
  tags: ["audit"],
  summary: "RFC 9162 consistency proof between two tree sizes",
  middleware: [requireRole("auditor", "admin", "agent")] as const,
  request: { query: z.object({ from: index, to: index.optional() }) },
  responses: {
    200: { description: "proof", ...json(anyObject) },
    ...problemResponses(400, 401, 403, 404),
  },
});
/**
 * Keyed by a plain string on purpose: @hono/zod-openapi reads every `application/...json` media
 * type as JSON and would then accept only a typed JSON response, never the NDJSON stream.
 */
const ndjsonContent: Record<string, { schema: z.ZodString }> = {
  "application/x-ndjson": { schema: z.string() },
};

const exportRoute = createRoute({
  method: "get",
  path: "/v1/audit/export",
  tags: ["audit"],
  summary: "NDJSON export, verifiable offline with the public keys",
  middleware: [requireRole("auditor", "admin")] as const,
  request: { query: z.object({ from: index.optional(), to: index.optional() }) },
  responses: {
    200: { description: "NDJSON", content: ndjsonContent },
    ...problemResponses(400, 401, 403),
  },
});

/**
 * `seal`: seals the personal fields of a client's event details per data subject before the event
 * is hashed and signed (docs/data-subjects.md); it rejects with a Problem.
 */
export function auditRoutes(
  audit: AuditService,
  seal?: (details: Record<string, unknown>) => Promise<Record<string, unknown>>,
) {
  // A bad event or an inconsistent checkpoint found here is the audit-integrity signal incident
  // response reads (docs/incidents.md): audited once per finding per process, not per call.
  const reported = new Set<string>();
  async function integrity(details: Record<string, unknown> & { what: string }): Promise<void> {
    const key = JSON.stringify(details);
    if (reported.has(key)) return;
    if (reported.size >= 1024) reported.clear();
    reported.add(key);
    await audit
      .append({
        eventType: "security.event",
        agentId: "system",
        details: { category: "audit.integrity", severity: "critical", ...details },
      })
      .catch(() => reported.delete(key));
  }
  return router()
    .openapi(appendRoute, async (c) => {
      const body = c.req.valid("json");
      await charge(c, "audit_appends", 1);
      const role = c.get("role");
      const subject = c.get("subject") ?? "unknown";
      if (role !== "admin" && body.agentId !== undefined && body.agentId !== subject) {
        throw new Problem(
          403,
          "forbidden",
          "Forbidden",
          `an agent appends only its own events (agentId must be ${subject})`,
        );
      }
      // Every caller, admins too: what is not on the allow-list is Sigil's own record. A 403 (the
      // type is valid, the caller may not write it), audited like every refusal by role.
      if (!isClientEventType(body.eventType)) {
        throw new Problem(
          403,
          "forbidden",
          "Forbidden",
          `event type ${body.eventType} is written by Sigil itself; clients append only agent.*, app.*, tool.invoked, message.routed and resource.allocated`,
        );
      }
      const details = seal ? await seal(body.details) : body.details;
      const r = await audit
        .append({
          eventType: body.eventType,
          agentId: body.agentId ?? subject,
          details: { ...details, submittedBy: c.get("keyid") },
        })
        .catch(auditProblem);
      return c.json(r as unknown as Record<string, unknown>, 201);
    })
    .openapi(listRoute, async (c) => {
      const { from, limit } = c.req.valid("query");
      const r = await audit.list(from, limit).catch(auditProblem);
      return c.json(
        { events: r.events as unknown as Record<string, unknown>[], next: r.next },
        200,
      );
    })
    .openapi(getRoute, async (c) => {
      const e = await audit.get(c.req.valid("param").index).catch(auditProblem);
      return c.json(e as unknown as Record<string, unknown>, 200);
    })
    .openapi(verifyRoute, async (c) => {
      const { from, to } = c.req.valid("query");
      const r = await audit.verify(from, to).catch(auditProblem);
      if (!r.valid && r.firstInvalid)
        await integrity({
          what: "verify",
          index: r.firstInvalid.index,
          code: r.firstInvalid.code,
          reason: r.firstInvalid.reason,
        });
      return c.json(r as unknown as Record<string, unknown>, 200);
    })
    .openapi(checkpointRoute, async (c) => {
      const r = await audit.checkpoint().catch(async (e: unknown) => {
        if (e instanceof AuditError && e.code === "inconsistent")
          await integrity({ what: "checkpoint", reason: e.message.slice(0, 512) });
        return auditProblem(e);
      });
      return c.json(r as unknown as Record<string, unknown>, 200);
    })
    .openapi(inclusionRoute, async (c) => {
      const { index: i, treeSize } = c.req.valid("query");
      const r = await audit.inclusionProof(i, treeSize).catch(auditProblem);
      return c.json(r as unknown as Record<string, unknown>, 200);
    })
    .openapi(consistencyRoute, async (c) => {
      const { from, to } = c.req.valid("query");
      const r = await audit.consistencyProof(from, to).catch(auditProblem);
      return c.json(r as unknown as Record<string, unknown>, 200);
    })
    .openapi(exportRoute, async (c) => {
      const { from, to } = c.req.valid("query");
      const lines = audit.export(from, to);
      // Pull the first line before committing to 200, so a bad range is still a problem+json.
      const first = await lines.next().catch(auditProblem);
      c.header("content-type", "application/x-ndjson");
      return stream(c, async (s) => {
        if (!first.done) await s.write(first.value);
        for await (const line of lines) await s.write(line);
      });
    });
}
