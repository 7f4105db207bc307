// Data subjects over HTTP (docs/http-api.md "Compliance and data subjects", docs/data-subjects.md):
// export a subject's events decrypted (GDPR Art. 15) and erase a subject by destroying its key
// (Art. 17). Admin only; both are audited, naming the subject by its keyed hash, never by its id.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AuditService } from "../../shared/audit";
import {
  MAX_SUBJECT_ID,
  SubjectError,
  SubjectIdSchema,
  type SubjectVault,
} from "../../shared/subjects";
import type { AuditFn } from "../audit-sink";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { router } from "../router";
import { auditProblem } from "./audit";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });
// Percent-encoded, an id of MAX_SUBJECT_ID characters takes at most 12 bytes each.
const IdParam = z.object({
  id: z
    .string()
    .max(MAX_SUBJECT_ID * 12)
    .openapi({ description: "the data subject's id (details.subject), percent-encoded" }),
});
const StateSchema = z.enum(["active", "erased", "unknown"]);

const ExportSchema = z.object({
  subject: z.string(),
  state: StateSchema,
  events: z.array(
    z.object({
      index: z.number().int(),
      eventId: z.string(),
      timestamp: z.string(),
      eventType: z.string(),
      agentId: z.string(),
      details: z.record(z.string(), z.unknown()),
      eventHash: z.string(),
    }),
  ),
  next: z.number().int().nullable(),
});
const EraseRequestSchema = z.strictObject({
  reason: z
    .string()
    .min(1)
    .max(1024)
    .refine((s) => s.isWellFormed(), "reason must be well-formed Unicode"),
});
const EraseSchema = z.object({
  subjectHash: z.string(),
  state: z.literal("erased"),
  previous: StateSchema,
});

const exportRoute = createRoute({
  method: "get",
  path: "/v1/subjects/{id}/export",
  tags: ["compliance"],
  summary:
    "A data subject's events with their personal fields decrypted (GDPR Art. 15), a page at a time",
  middleware: [requireRole("admin")] as const,
  request: {
    params: IdParam,
    query: z.object({
      from: z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    }),
  },
  responses: {
    200: { description: "the subject's events", ...json(ExportSchema) },
    ...problemResponses(400, 401, 403, 503),
  },
});
const eraseRoute = createRoute({
  method: "post",
  path: "/v1/subjects/{id}/erase",
  tags: ["compliance"],
  summary:
    "Erase a data subject (GDPR Art. 17): destroys its key; its events stay, verify, and read back as [erased]",
  middleware: [requireRole("admin")] as const,
  request: { params: IdParam, body: { required: true, ...json(EraseRequestSchema) } },
  responses: {
    200: { description: "erased", ...json(EraseSchema) },
    ...problemResponses(400, 401, 403, 503),
  },
});

export interface SubjectRouteDeps {
  vault: SubjectVault;
  audit: AuditService;
  record: AuditFn;
}

/**
 * The id as sent: the raw path segment strictly decoded (Hono keeps a segment that does not decode
 * as it is, which would make `%ED%A0%80` — a lone surrogate — an id of nine ASCII characters).
 */
function subjectId(c: Context): string {
  const raw = new URL(c.req.url).pathname.split("/")[3] ?? "";
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    throw new Problem(
      400,
      "validation",
      "Invalid subject id",
      "the id is not percent-encoded UTF-8",
    );
  }
  const p = SubjectIdSchema.safeParse(id);
  if (!p.success)
    throw new Problem(400, "validation", "Invalid subject id", z.prettifyError(p.error));
  return id;
}

export function subjectProblem(e: unknown): never {
  if (e instanceof SubjectError) {
    if (e.code === "invalid-input")
      throw new Problem(400, "validation", "Invalid personal data", e.message);
    throw new Problem(503, "unavailable", "Subject keys unavailable", e.message);
  }
  return auditProblem(e);
}

export function subjectRoutes(d: SubjectRouteDeps) {
  return router()
    .openapi(exportRoute, async (c) => {
      const id = subjectId(c);
      const { from } = c.req.valid("query");
      const out = await d.vault
        .export(id, (f, limit) => d.audit.list(f, limit), from)
        .catch(subjectProblem);
      await d.record({
        eventType: "subject.exported",
        agentId: c.get("subject") ?? "unknown",
        details: {
          subjectHash: d.vault.subjectHash(id),
          state: out.state,
          events: out.events.length,
          ...(from !== undefined ? { from } : {}),
        },
      });
      return c.json(out, 200);
    })
    .openapi(eraseRoute, async (c) => {
      const id = subjectId(c);
      const { reason } = c.req.valid("json");
      const previous = await d.vault.erase(id).catch(subjectProblem);
      const subjectHash = d.vault.subjectHash(id);
      // Without the personal data (COMPLIANCE.md): the keyed hash lets the deployment show, for a
      // named subject, that it was erased; it confirms a guessed id only with the deployment secret.
      await d.record({
        eventType: "subject.erased",
        agentId: c.get("subject") ?? "unknown",
        details: { subjectHash, previous, reason },
      });
      return c.json({ subjectHash, state: "erased" as const, previous }, 200);
    });
}
