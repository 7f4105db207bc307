// Policy documents (versioned) and evaluation (docs/policy-language.md, docs/http-api.md).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApprovalIdSchema } from "../../shared/approvals";
import { canonicalJson, sha256Hex } from "../../shared/encoding";
import {
  type Decision,
  DecisionSchema,
  EvaluationBatchSchema,
  type EvaluationRequest,
  EvaluationRequestSchema,
  type PolicyEngine,
  PolicyNameSchema,
  PolicyRecordSchema,
  PolicyVersionInfoSchema,
  PutPolicyResultSchema,
  RollbackSchema,
  reservedAttributesIn,
  withServerAttributes,
} from "../../shared/policy";
import { type AuditFn, securityEvent } from "../audit-sink";
import { identityOf } from "../middleware/auth";

import { charge } from "../middleware/limits";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { type FieldError, notFound, Problem } from "../problem";
import { type AppEnv, router } from "../router";
import type { evaluateApprovalStep } from "./approvals";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
const nameParam = z.object({ name: PolicyNameSchema });
const MAX_POLICY_BYTES = 1024 * 1024;

const putRoute = createRoute({
  method: "put",
  path: "/v1/policies/{name}",
  tags: ["policies"],
  summary: "Register or update a policy document (text/plain); atomic, versioned",
  middleware: [requireRole("admin")] as const,
  request: {
    params: nameParam,
    body: { required: true, content: { "text/plain": { schema: z.string() } } },
  },
  responses: {
    201: {
      description:
        "the document is current: a new version, or the current one's number when identical",
      ...json(PutPolicyResultSchema),
    },
    ...problemResponses(400, 401, 403, 413),
  },
});
const listRoute = createRoute({
  method: "get",
  path: "/v1/policies",
  tags: ["policies"],
  summary: "List policy documents",
  middleware: [requireRole("admin", "auditor")] as const,
  responses: {
    200: {
      description: "documents",
      ...json(
        z.object({
          policies: z.array(z.record(z.string(), z.unknown())),
          policySetVersion: z.string(),
        }),
      ),
    },
    ...problemResponses(401, 403),
  },
});
const getRoute = createRoute({
  method: "get",
  path: "/v1/policies/{name}",
  tags: ["policies"],
  summary: "Current source and version of a document, or a given version's (also of a deleted one)",
  middleware: [requireRole("admin", "auditor")] as const,
  request: {
    params: nameParam,
    query: z.object({
      version: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    }),
  },
  responses: {
    200: { description: "document", ...json(PolicyRecordSchema) },
    ...problemResponses(401, 403, 404),
  },
});
const versionsRoute = createRoute({
  method: "get",
  path: "/v1/policies/{name}/versions",
  tags: ["policies"],
  summary: "Every stored version of a document",
  middleware: [requireRole("admin", "auditor")] as const,
  request: { params: nameParam },
  responses: {
    200: {
      description: "versions",
      ...json(z.object({ name: z.string(), versions: z.array(PolicyVersionInfoSchema) })),
    },
    ...problemResponses(401, 403, 404),
  },
});
const rollbackRoute = createRoute({
  method: "post",
  path: "/v1/policies/{name}/rollback",
  tags: ["policies"],
  summary: "Make an earlier version current",
  middleware: [requireRole("admin")] as const,
  request: { params: nameParam, body: { required: true, ...json(RollbackSchema) } },
  responses: {
    200: { description: "now current", ...json(PolicyRecordSchema) },
    ...problemResponses(400, 401, 403, 404),
  },
});
const deleteRoute = createRoute({
  method: "delete",
  path: "/v1/policies/{name}",
  tags: ["policies"],
  summary: "Deactivate a document (its history is kept)",
  middleware: [requireRole("admin")] as const,
  request: { params: nameParam },
  responses: {
    200: {
      description: "deactivated",
      ...json(z.object({ name: z.string(), deleted: z.literal(true) })),
    },
    ...problemResponses(401, 403, 404),
  },
});
/**
 * The requests whose nonce the evaluate handler reserves with its decision event (authenticate's
 * `deferNonce`), where the audit log can hold nonces. The batch route appends several events, so
 * its nonce is reserved up front as everywhere else.
 */
export const reservesNonceWithAudit = (method: string, path: string): boolean =>
  method === "POST" && path === "/v1/evaluate";

/**
 * One evaluation may carry the approval it redeems (docs/governance.md "Approvals"); a batch may
 * not: a redemption is one request, bound to exactly that request.
 */
const EvaluateBodySchema = EvaluationRequestSchema.extend({
  approvalId: ApprovalIdSchema.optional(),
}).strict();

const evaluateRoute = createRoute({
  method: "post",
  path: "/v1/evaluate",
  tags: ["evaluate"],
  summary: "May this agent do X? A decision is data: a deny is still 200",
  description:
    "The server sets context.agent (kid, subject, role, groups, trust: the authenticated key and its admin-set record) and context.request.time (RFC 3339, the server's clock, to the second); a context carrying `agent` or `request` is 400 reserved-attribute.",
  middleware: [requireRole("agent")] as const,
  request: { body: { required: true, ...json(EvaluateBodySchema) } },
  responses: {
    200: { description: "decision", ...json(DecisionSchema) },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const batchRoute = createRoute({
  method: "post",
  path: "/v1/evaluate/batch",
  tags: ["evaluate"],
  summary: "Evaluate up to 1000 requests against one policy-set version, results in order",
  description:
    "Each item's context gets the server-set agent.* and request.time as in POST /v1/evaluate; an item whose context carries `agent` or `request` makes the whole batch 400 reserved-attribute.",
  middleware: [requireRole("agent")] as const,
  request: { body: { required: true, ...json(EvaluationBatchSchema) } },
  responses: {
    200: { description: "decisions", ...json(z.object({ results: z.array(DecisionSchema) })) },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

export interface PolicyRouteDeps {
  policies: PolicyEngine;
  audit: AuditFn;
  /** The server's clock: request.time. */
  now?: () => number;
  /** Opens and redeems approvals for `require_approval` decisions (routes/approvals.ts). */
  approvalStep?: ReturnType<typeof evaluateApprovalStep>;
}

/**
 * docs/governance.md: a caller cannot speak for itself. A context carrying a reserved attribute is a
 * 400 naming each one, and an attempt to set the caller's identity is a security event (with the
 * request's nonce when the route holds it, so a replay cannot repeat the event).
 */
async function refuseReserved(
  c: Context<AppEnv>,
  audit: AuditFn,
  contexts: readonly { path: string; context: object }[],
): Promise<void> {
  const errors: FieldError[] = [];
  for (const { path, context } of contexts) {
    for (const k of reservedAttributesIn(context)) {
      errors.push({
        path: `${path}.${k}`,
        message: `${k} is set by the server from the authenticated key; a request cannot set it`,
      });
    }
  }
  if (errors.length === 0) return;
  const names = [...new Set(errors.map((e) => e.path.split(".").pop()))].join(" and ");
  const nonce = c.get("nonceClaim");
  c.set("nonceClaim", undefined);
  await securityEvent(
    audit,
    c.get("subject") ?? "unknown",
    "reserved_attribute",
    "medium",
    `the request tried to set ${names} in the policy context`,
    { kid: c.get("keyid") ?? null, paths: errors.map((e) => e.path), path: c.req.path },
    nonce ? { nonce } : {},
  );
  throw new Problem(
    400,
    "reserved-attribute",
    "Reserved context attribute",
    `the server sets ${names} in the policy context; send the request without ${errors.length === 1 ? "it" : "them"}`,
    errors,
  );
}

/** Sees other nodes' writes before deciding; a store outage is a 503, never a stale allow. */
async function fresh(engine: PolicyEngine): Promise<void> {
  await engine.reload().catch((e: unknown) => {
    throw new Problem(503, "unavailable", "Policy store unavailable", (e as Error).message);
  });
}

/**
 * `kid`: the key that signed the request, so the trail shows which credential each decision was
 * made for (a revoked key's later use is then provable; docs/compliance.md).
 */
export function decisionAudit(
  agentId: string,
  req: EvaluationRequest,
  d: Decision,
  kid: string | undefined,
) {
  return {
    // A deny is a policy violation; both are policy decisions (docs/audit.md event types).
    eventType: d.decision === "deny" ? "policy.violation" : "policy.decision",
    agentId,
    details: {
      ...(kid ? { kid } : {}),
      decisionId: d.decisionId,
      action: req.action,
      resource: req.resource ?? null,
      tags: req.tags ?? [],
      // The context may hold personal data; the trail keeps its hash, which still proves what was
      // asked.
      contextSha256: sha256Hex(canonicalJson(req.context ?? {})),
      decision: d.decision,
      enforced: d.enforced,
      reason: d.reason ?? null,
      matched: d.matched,
      policySetVersion: d.policySetVersion,
    },
  };
}

export function policyRoutes({ policies, audit, now = Date.now, approvalStep }: PolicyRouteDeps) {
  return router()
    .openapi(putRoute, async (c) => {
      const { name } = c.req.valid("param");
      const source = await c.req.text();
      if (source.length > MAX_POLICY_BYTES) {
        throw new Problem(
          413,
          "body-too-large",
          "Policy too large",
          `documents are limited to ${MAX_POLICY_BYTES} bytes`,
        );
      }
      const r = await policies.put(name, source);
      if (!r.ok) {
        await audit({
          eventType: "policy.rejected",
          agentId: c.get("subject") ?? "admin",
          details: { name, errors: r.errors },
        });
        throw new Problem(
          400,
          "policy-invalid",
          "Policy document is invalid",
          `${r.errors.length} error(s); nothing changed`,
          r.errors,
        );
      }
      await audit({
        eventType: "policy.updated",
        agentId: c.get("subject") ?? "admin",
        details: {
          name,
          version: r.version,
          sha256: r.sha256,
          unchanged: r.unchanged,
          policySetVersion: policies.policySetVersion,
        },
      });
      // 201 either way (docs/http-api.md); an identical upload keeps the current version number.
      return c.json({ name: r.name, version: r.version, sha256: r.sha256 }, 201);
    })
    .openapi(listRoute, async (c) => {
      await fresh(policies);
      const list = await policies.list();
      return c.json(
        {
          policies: list as unknown as Record<string, unknown>[],
          policySetVersion: policies.policySetVersion,
        },
        200,
      );
    })
    .openapi(getRoute, async (c) => {
      const { name } = c.req.valid("param");
      const { version } = c.req.valid("query");
      const rec = await policies.get(name, version);
      if (!rec)
        throw notFound(
          version === undefined ? `policy ${name}` : `version ${version} of policy ${name}`,
        );
      return c.json(rec, 200);
    })
    .openapi(versionsRoute, async (c) => {
      const { name } = c.req.valid("param");
      const versions = await policies.versions(name);
      if (versions.length === 0) throw notFound(`policy ${name}`);
      return c.json({ name, versions }, 200);
    })
    .openapi(rollbackRoute, async (c) => {
      const { name } = c.req.valid("param");
      const { version } = c.req.valid("json");
      const r = await policies.rollback(name, version);
      if (!r.ok) throw notFound(`version ${version} of policy ${name}`);
      await audit({
        eventType: "policy.rolled_back",
        agentId: c.get("subject") ?? "admin",
        details: {
          name,
          version,
          sha256: r.record.sha256,
          policySetVersion: policies.policySetVersion,
        },
      });
      return c.json(r.record, 200);
    })
    .openapi(deleteRoute, async (c) => {
      const { name } = c.req.valid("param");
      if (!(await policies.delete(name))) throw notFound(`policy ${name}`);
      await audit({
        eventType: "policy.deleted",
        agentId: c.get("subject") ?? "admin",
        details: { name, policySetVersion: policies.policySetVersion },
      });
      return c.json({ name, deleted: true as const }, 200);
    })
    .openapi(evaluateRoute, async (c) => {
      const { approvalId, ...req } = c.req.valid("json");
      await charge(c, "evaluations", 1);
      await refuseReserved(c, audit, [{ path: "context", context: req.context }]);
      await fresh(policies);
      const d = policies.evaluate({
        ...req,
        context: withServerAttributes(req.context, identityOf(c), now()),
      });
      // The nonce, when authentication left it to us, is reserved with the decision event: before
      // any approval is opened or spent, so a replayed request changes nothing.
      const nonce = c.get("nonceClaim");
      c.set("nonceClaim", undefined);
      const event = decisionAudit(c.get("subject") ?? "unknown", req, d, c.get("keyid"));
      await audit(
        approvalId === undefined ? event : { ...event, details: { ...event.details, approvalId } },
        nonce ? { nonce } : {},
      );
      return c.json(approvalStep ? await approvalStep(c, req, d, approvalId) : d, 200);
    })
    .openapi(batchRoute, async (c) => {
      const { requests } = c.req.valid("json");
      // Each decision in a batch is an audited evaluation: it costs one token, all or none.
      await charge(c, "evaluations", requests.length);
      await refuseReserved(
        c,
        audit,
        requests.map((r, i) => ({ path: `requests.${i}.context`, context: r.context })),
      );
      await fresh(policies);
      const who = identityOf(c);
      const at = now();
      // Yields between slices: a batch of costly evaluations must not stall other requests.
      const results = await policies.evaluateBatchYielding(
        requests.map((r) => ({ ...r, context: withServerAttributes(r.context, who, at) })),
      );
      const agentId = who.subject || "unknown";
      await Promise.all(
        results.map((d, i) => audit(decisionAudit(agentId, requests[i]!, d, who.kid))),
      );
      return c.json({ results }, 200);
    });
}
