// Quarantine routes (docs/incidents.md "Quarantine", docs/http-api.md): an admin places and lifts
// quarantines; admins and auditors list them. Incident response places them through the same
// service (shared/quarantine), so a manual and an automatic quarantine of one target are one record.
// A manual one may name the incident it answers (`incidentId`), which must exist.
import { createRoute, z } from "@hono/zod-openapi";
import { IncidentIdSchema, type IncidentStore } from "../../shared/incidents";
import {
  QuarantineIdSchema,
  type QuarantineRecord,
  type QuarantineService,
  type QuarantineTarget,
} from "../../shared/quarantine";
import { identityOf } from "../middleware/auth";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { router } from "../router";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });

// Well-formed Unicode is checked for every body by the JSON guard (and again by the record schema).
const name = z.string().min(1).max(256);
const reason = z.string().min(1).max(4096);

const TargetViewSchema = z
  .union([
    z.object({ kind: z.literal("subject"), subject: z.string() }),
    z.object({ kind: z.literal("key"), kid: z.string() }),
    z.object({ kind: z.literal("worker"), workerId: z.string() }),
  ])
  .openapi("QuarantineTarget");

const QuarantineViewSchema = z
  .object({
    id: z.string(),
    active: z.boolean(),
    target: TargetViewSchema,
    reason: z.string(),
    incidentId: z.string().optional(),
    placedBy: z.string(),
    placedAt: z.string(),
    liftedAt: z.string().optional(),
    liftedBy: z.string().optional(),
    liftReason: z.string().optional(),
  })
  .openapi("Quarantine");

const view = (r: QuarantineRecord) => ({ ...r, active: r.liftedAt === undefined });

const PlaceBodySchema = z
  .object({
    subject: name.optional(),
    kid: name.optional(),
    workerId: name.optional(),
    reason,
    incidentId: IncidentIdSchema.optional(),
  })
  .strict()
  .refine(
    (b) => [b.subject, b.kid, b.workerId].filter((x) => x !== undefined).length === 1,
    "exactly one of subject, kid, workerId",
  );

const placeRoute = createRoute({
  method: "post",
  path: "/v1/quarantine",
  tags: ["quarantine"],
  summary: "Quarantine a subject, a key or a worker (admin); idempotent",
  description:
    "201 with the new record; 200 with the record already in force when the target is quarantined (one active quarantine per target; its `incidentId` stays as it was). A subject or key quarantine refuses the target's requests with 403 `quarantined` and cancels its jobs; a worker quarantine refuses its results and re-queues its jobs. `incidentId` links the quarantine to an existing incident (404 `not-found` when there is none); it is stored on the record and in the `quarantine.placed` audit event.",
  middleware: [requireRole("admin")] as const,
  request: { body: { required: true, ...json(PlaceBodySchema) } },
  responses: {
    200: {
      description: "already in force",
      ...json(z.object({ quarantine: QuarantineViewSchema })),
    },
    201: { description: "placed", ...json(z.object({ quarantine: QuarantineViewSchema })) },
    ...problemResponses(400, 401, 403, 404, 413, 429, 503),
  },
});

const liftRoute = createRoute({
  method: "delete",
  path: "/v1/quarantine/{id}",
  tags: ["quarantine"],
  summary: "Lift a quarantine (admin); lifting never restores a revoked key",
  middleware: [requireRole("admin")] as const,
  request: {
    params: z.object({ id: QuarantineIdSchema }),
    body: { required: true, ...json(z.object({ reason }).strict()) },
  },
  responses: {
    200: {
      description: "the record, lifted (`lifted`: false when it had been lifted already)",
      ...json(z.object({ quarantine: QuarantineViewSchema, lifted: z.boolean() })),
    },
    ...problemResponses(400, 401, 403, 404, 413, 429, 503),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/quarantine",
  tags: ["quarantine"],
  summary: "Quarantines newest first, lifted ones included (admin, auditor)",
  middleware: [requireRole("admin", "auditor")] as const,
  request: {
    query: z.object({
      active: z.enum(["true", "false"]).optional(),
      limit: z.coerce.number().int().min(1).max(500).optional(),
      before: QuarantineIdSchema.optional(),
    }),
  },
  responses: {
    200: {
      description: "a page; `next` is the `before` of the next page",
      ...json(
        z.object({ quarantines: z.array(QuarantineViewSchema), next: z.string().nullable() }),
      ),
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

function unavailable(e: unknown): never {
  if (e instanceof Problem) throw e;
  throw new Problem(503, "unavailable", "Quarantine store unavailable", (e as Error).message);
}

/**
 * `incidents`: where a named incidentId must exist; absent (no incident store), no incident does,
 * so naming one is refused rather than stored unchecked.
 */
export function quarantineRoutes(
  quarantine: QuarantineService,
  incidents?: Pick<IncidentStore, "get">,
) {
  return router()
    .openapi(placeRoute, async (c) => {
      const b = c.req.valid("json");
      if (b.incidentId !== undefined) {
        const found = await incidents?.get(b.incidentId).catch(unavailable);
        if (!found) throw new Problem(404, "not-found", "Not found", `no incident ${b.incidentId}`);
      }
      const target: QuarantineTarget =
        b.subject !== undefined
          ? { kind: "subject", subject: b.subject }
          : b.kid !== undefined
            ? { kind: "key", kid: b.kid }
            : { kind: "worker", workerId: b.workerId ?? "" };
      const who = identityOf(c);
      const out = await quarantine
        .placeOutcome({
          target,
          reason: b.reason,
          by: who.subject || who.kid,
          ...(b.incidentId !== undefined ? { incidentId: b.incidentId } : {}),
        })
        .catch(unavailable);
      return out.placed
        ? c.json({ quarantine: view(out.record) }, 201)
        : c.json({ quarantine: view(out.record) }, 200);
    })
    .openapi(liftRoute, async (c) => {
      const { id } = c.req.valid("param");
      const who = identityOf(c);
      const out = await quarantine
        .lift(id, who.subject || who.kid, c.req.valid("json").reason)
        .catch(unavailable);
      if (!out.ok) throw new Problem(404, "not-found", "Not found", `no quarantine ${id}`);
      return c.json({ quarantine: view(out.record), lifted: out.lifted }, 200);
    })
    .openapi(listRoute, async (c) => {
      const q = c.req.valid("query");
      const limit = q.limit ?? 100;
      // `active` filters a page after the read: a page may hold fewer than `limit`.
      const page = await quarantine
        .list({ limit, ...(q.before !== undefined ? { before: q.before } : {}) })
        .catch(unavailable);
      const shown =
        q.active === undefined
          ? page
          : page.filter((r) => (r.liftedAt === undefined) === (q.active === "true"));
      return c.json(
        {
          quarantines: shown.map(view),
          next: page.length === limit ? (page[page.length - 1]?.id ?? null) : null,
        },
        200,
      );
    });
}
