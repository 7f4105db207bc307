// Compliance reports over HTTP (docs/http-api.md "Compliance", docs/compliance.md): generate a
// signed report for a framework and period, read it back as JSON or as a printable HTML page, list
// the frameworks. Auditors and admins only; every generated report is audited.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AuditService, Signer } from "../../shared/audit";
import {
  type ComplianceFacts,
  type ComplianceReport,
  type Framework,
  FrameworkIdSchema,
  generateReport,
  PeriodSchema,
  type ReportStore,
  renderReportHtml,
} from "../../shared/compliance";
import type { KeyRegistry } from "../../shared/keys";
import type { AuditFn } from "../audit-sink";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { router } from "../router";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
const anyObject = z.record(z.string(), z.unknown());
/**
 * Keyed by a plain string type on purpose (as the audit export): @hono/zod-openapi would otherwise
 * accept only a typed JSON response, never the HTML page.
 */
const reportContent: Record<string, { schema: z.ZodType }> = {
  "application/json": { schema: anyObject },
  "text/html": { schema: z.string() },
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const ReportRequestSchema = z
  .strictObject({ framework: FrameworkIdSchema, from: z.string(), to: z.string() })
  .superRefine((b, ctx) => {
    const p = PeriodSchema.safeParse({ from: b.from, to: b.to });
    if (!p.success)
      for (const i of p.error.issues) ctx.addIssue({ ...i, code: "custom", message: i.message });
  });

const createReportRoute = createRoute({
  method: "post",
  path: "/v1/compliance/reports",
  tags: ["compliance"],
  summary:
    "Generate a signed compliance report for a framework and period (JSON, or HTML with Accept: text/html)",
  middleware: [requireRole("auditor", "admin")] as const,
  request: { body: { required: true, ...json(ReportRequestSchema) } },
  responses: {
    201: { description: "signed report", content: reportContent },
    ...problemResponses(400, 401, 403, 503),
  },
});
const getReportRoute = createRoute({
  method: "get",
  path: "/v1/compliance/reports/{id}",
  tags: ["compliance"],
  summary: "A report (JSON, or a self-contained HTML page with Accept: text/html)",
  middleware: [requireRole("auditor", "admin")] as const,
  request: { params: z.object({ id: z.string().regex(UUID, "must be a report id") }) },
  responses: {
    200: { description: "report", content: reportContent },
    ...problemResponses(400, 401, 403, 404),
  },
});
const frameworksRoute = createRoute({
  method: "get",
  path: "/v1/compliance/frameworks",
  tags: ["compliance"],
  summary: "The frameworks reports can be generated for",
  middleware: [requireRole("auditor", "admin")] as const,
  responses: {
    200: { description: "frameworks", ...json(z.object({ frameworks: z.array(anyObject) })) },
    ...problemResponses(401, 403),
  },
});

export interface ComplianceRouteDeps {
  audit: AuditService;
  record: AuditFn;
  frameworks: ReadonlyMap<string, Framework>;
  reports: ReportStore;
  keys: Pick<KeyRegistry, "list">;
  /** The service key, which signs checkpoints too. */
  signer: Signer;
  facts: Omit<ComplianceFacts, "keys">;
  now?: () => number;
}

const wantsHtml = (c: Context) =>
  (c.req.header("accept") ?? "").toLowerCase().includes("text/html");

function respond(c: Context, report: ComplianceReport, status: 200 | 201) {
  if (wantsHtml(c)) {
    c.header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(renderReportHtml(report), status);
  }
  return c.json(report, status);
}

export function complianceRoutes(d: ComplianceRouteDeps) {
  return router()
    .openapi(createReportRoute, async (c) => {
      const body = c.req.valid("json");
      const framework = d.frameworks.get(body.framework);
      if (!framework)
        throw new Problem(
          400,
          "validation",
          "Unknown framework",
          `no framework ${body.framework}; see GET /v1/compliance/frameworks`,
        );
      // The registry's view of revocations and roles (the trail holds only the period's changes).
      const keys = (await d.keys.list()).map((k) => ({
        kid: k.kid,
        subject: k.subject,
        role: k.role,
        ...(k.revokedAt !== undefined ? { revokedAt: new Date(k.revokedAt).toISOString() } : {}),
      }));
      const report = await generateReport({
        audit: d.audit,
        framework,
        period: { from: body.from, to: body.to },
        facts: { ...d.facts, keys },
        signer: d.signer,
        ...(d.now ? { now: d.now } : {}),
      });
      await d.reports.put(report);
      await d.record({
        eventType: "compliance.reported",
        agentId: c.get("subject") ?? "unknown",
        details: {
          reportId: report.reportId,
          framework: report.framework,
          version: report.version,
          period: report.period,
          score: report.score,
          notMet: report.controls.filter((x) => x.status === "not_met").map((x) => x.id),
        },
      });
      return respond(c, report, 201);
    })
    .openapi(getReportRoute, async (c) => {
      const report = await d.reports.get(c.req.valid("param").id);
      if (!report) throw new Problem(404, "not-found", "Not found", "no such report");
      return respond(c, report, 200);
    })
    .openapi(frameworksRoute, (c) =>
      c.json(
        {
          frameworks: [...d.frameworks.values()].map((f) => ({
            id: f.id,
            name: f.name,
            version: f.version,
            controls: f.controls.map((x) => ({
              id: x.id,
              reference: x.reference,
              title: x.title,
              check: x.check.kind,
            })),
          })),
        },
        200,
      ),
    );
}
