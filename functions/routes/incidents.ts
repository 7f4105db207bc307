// Incidents (docs/incidents.md, docs/http-api.md "Incidents"): read incidents and their evidence
// (admins and auditors), move them forward (admins: acknowledge, resolve, false positive, each with
// a reason in the signed request and audited), follow their changes as server-sent events, and
// emergency mode: its state, the admin override (only with `[security]
// emergency_override_enabled`) and the gate that refuses calls while it is on.
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AuditAppendInput } from "../../shared/audit";
import {
  canMove,
  EmergencySchema,
  type Incident,
  IncidentIdSchema,
  IncidentSchema,
  type IncidentState,
  IncidentStateSchema,
  type IncidentStore,
  incidentEventType,
  moveIncident,
  SeveritySchema,
  withAction,
} from "../../shared/incidents";
import type { Emergency } from "../../shared/incidents/ports";
import {
  EmergencyOverrideError,
  emergencyRefuses,
  overrideEmergency,
} from "../../shared/incidents/responder";
import type { AuditFn } from "../audit-sink";
import { identityOf } from "../middleware/auth";
import { requireRole } from "../middleware/roles";
import { problemResponses } from "../openapi";
import { Problem } from "../problem";
import { type AppEnv, router } from "../router";
import { CHANGE_CURSOR, pollChanges, serveFeed } from "../sse-feed";

const json = <T extends z.ZodType>(schema: T) => ({ content: { "application/json": { schema } } });

// Cloned: a schema built in shared/ before @hono/zod-openapi was first imported (the import order
// of the entry decides) has no `.openapi`; a clone is built now, after the extension.
const IncidentViewSchema = IncidentSchema.clone().openapi("Incident");
const EmergencyViewSchema = EmergencySchema.clone().openapi("Emergency");
const idParam = z.object({ id: IncidentIdSchema });
// Well-formed Unicode is checked for every body by the JSON guard; a reason is required: it is
// what the trail keeps of why an admin closed an incident.
const ReasonBodySchema = z.strictObject({ reason: z.string().min(1).max(4096) });

const READERS = ["admin", "auditor"] as const;

const listRoute = createRoute({
  method: "get",
  path: "/v1/incidents",
  tags: ["incidents"],
  summary: "Incidents newest first, optionally of one state and one severity (admins, auditors)",
  middleware: [requireRole(...READERS)] as const,
  request: {
    query: z.object({
      state: IncidentStateSchema.optional(),
      severity: SeveritySchema.optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
      before: IncidentIdSchema.optional(),
    }),
  },
  responses: {
    200: {
      description: "a page; `next` is the `before` of the next page",
      ...json(z.object({ incidents: z.array(IncidentViewSchema), next: z.string().nullable() })),
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const eventsRoute = createRoute({
  method: "get",
  path: "/v1/incidents/events",
  tags: ["incidents"],
  summary: "Server-sent events: event `incident` with the incident as it is now, for every change",
  description:
    "Starts at the newest change, or after `Last-Event-ID` (covered by the signature, else 401; a malformed one is 400). Ends after a few minutes (reconnect with Last-Event-ID), or with event `end` (a problem) once the key is revoked, quarantined or no longer of its role.",
  middleware: [requireRole(...READERS)] as const,
  responses: {
    200: {
      description: "text/event-stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const emergencyRoute = createRoute({
  method: "get",
  path: "/v1/incidents/emergency",
  tags: ["incidents"],
  summary: "Emergency mode: whether it is on, since when, its scope and the incident behind it",
  middleware: [requireRole(...READERS)] as const,
  responses: {
    200: {
      description: "the state (null: never entered)",
      ...json(
        z.object({ emergency: EmergencyViewSchema.nullable(), overrideEnabled: z.boolean() }),
      ),
    },
    ...problemResponses(401, 403, 429, 503),
  },
});
const overrideRoute = createRoute({
  method: "post",
  path: "/v1/incidents/emergency/override",
  tags: ["incidents"],
  summary: "Lift emergency mode with a reason (admins; only with emergency_override_enabled)",
  description:
    "The reason travels in the admin's signed request (content-digest) and is audited as incident.updated (change emergency_override). 403 forbidden when overrides are disabled, 409 conflict when emergency mode is not on.",
  middleware: [requireRole("admin")] as const,
  request: { body: { required: true, ...json(ReasonBodySchema) } },
  responses: {
    200: { description: "lifted", ...json(z.object({ emergency: EmergencyViewSchema })) },
    ...problemResponses(400, 401, 403, 409, 413, 429, 503),
  },
});
const getRoute = createRoute({
  method: "get",
  path: "/v1/incidents/{id}",
  tags: ["incidents"],
  summary: "One incident (admins, auditors)",
  middleware: [requireRole(...READERS)] as const,
  request: { params: idParam },
  responses: {
    200: { description: "the incident", ...json(z.object({ incident: IncidentViewSchema })) },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});
const evidenceRoute = createRoute({
  method: "get",
  path: "/v1/incidents/{id}/evidence",
  tags: ["incidents"],
  summary:
    "The incident's signed evidence bundle: the window's NDJSON export, its checkpoint and inclusion proofs",
  middleware: [requireRole(...READERS)] as const,
  request: { params: idParam },
  responses: {
    200: {
      description: "the bundle, verifiable offline with the service's public key",
      ...json(z.record(z.string(), z.unknown())),
    },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

const moves = {
  acknowledge: "acknowledged",
  resolve: "resolved",
  "false-positive": "false_positive",
} as const satisfies Record<string, IncidentState>;

const moveRoute = (verb: keyof typeof moves) =>
  createRoute({
    method: "post",
    path: `/v1/incidents/{id}/${verb}`,
    tags: ["incidents"],
    summary: `Move an incident to ${moves[verb]} with a reason (admins; states only move forward)`,
    description: "409 conflict when the incident is already there or past it.",
    middleware: [requireRole("admin")] as const,
    request: { params: idParam, body: { required: true, ...json(ReasonBodySchema) } },
    responses: {
      200: { description: "moved", ...json(z.object({ incident: IncidentViewSchema })) },
      ...problemResponses(400, 401, 403, 404, 409, 413, 429, 503),
    },
  });

function unavailable(e: unknown): never {
  if (e instanceof Problem) throw e;
  throw new Problem(503, "unavailable", "Incident store unavailable", (e as Error).message);
}

export interface IncidentRouteDeps {
  store: IncidentStore;
  audit: AuditFn;
  overrideEnabled: boolean;
  now: () => number;
  /** Server-sent events: how often the change feed is read, and how long a stream lasts. */
  pollMs?: number;
  maxStreamMs?: number;
}

export function incidentRoutes(deps: IncidentRouteDeps) {
  const { store, audit, now, pollMs = 500, maxStreamMs = 300_000 } = deps;
  const iso = () => new Date(now()).toISOString();
  const get = async (id: string) => {
    const s = await store.get(id).catch(unavailable);
    if (!s) throw new Problem(404, "not-found", "Not found", `no incident ${id}`);
    return s;
  };

  /**
   * An admin's move: the timeline entry and its audit claim land in one compare-and-set (so the
   * runner's sweep never audits it a second time), then the audit event is written.
   */
  const move = async (id: string, to: IncidentState, by: string, reason: string) => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const cur = await get(id);
      if (!canMove(cur.record.state, to))
        throw new Problem(
          409,
          "conflict",
          "Incident cannot move",
          `incident ${id} is ${cur.record.state}; states only move forward`,
        );
      const at = iso();
      const moved = moveIncident(cur.record, to, by, at, reason);
      const index = moved.timeline.length - 1;
      const next = withAction(moved, {
        action: "audit",
        target: `timeline:${index}`,
        at,
        by,
        outcome: "done",
        detail: null,
      });
      if (!(await store.swap(id, cur.rev, next).catch(unavailable))) continue;
      await audit({
        eventType: incidentEventType(to),
        agentId: by,
        details: incidentDetails(next, to, by, reason),
      });
      return next;
    }
    throw new Problem(503, "unavailable", "Incident busy", `incident ${id} kept changing`);
  };

  let r = router()
    .openapi(listRoute, async (c) => {
      const q = c.req.valid("query");
      const limit = q.limit ?? 100;
      const out: Incident[] = [];
      let before = q.before;
      let next: string | null = null;
      // Filtered pages: read on until the page is full or the store is exhausted (bounded).
      for (let round = 0; round < 20 && out.length < limit; round++) {
        const page = await store
          .list({ limit: 1000, ...(before !== undefined ? { before } : {}) })
          .catch(unavailable);
        for (const s of page) {
          before = s.record.incidentId;
          if (q.state && s.record.state !== q.state) continue;
          if (q.severity && s.record.severity !== q.severity) continue;
          out.push(s.record);
          if (out.length === limit) break;
        }
        if (page.length < 1000) break;
      }
      if (out.length === limit) next = out.at(-1)!.incidentId;
      return c.json({ incidents: out, next }, 200);
    })
    // Before /{id}: "events" and "emergency" are not incident ids.
    .openapi(eventsRoute, (c) =>
      serveFeed(c, {
        lastEventId: CHANGE_CURSOR,
        start: () => store.changeCursor().catch(unavailable),
        maxStreamMs,
        read: pollChanges({
          event: "incident",
          pollMs,
          changes: (after, limit) => store.changes(after, limit),
          render: async (id) => (await store.get(id))?.record,
        }),
      }),
    )
    .openapi(emergencyRoute, async (c) => {
      const e = await store.emergency().catch(unavailable);
      return c.json({ emergency: e.value ?? null, overrideEnabled: deps.overrideEnabled }, 200);
    })
    .openapi(overrideRoute, async (c) => {
      const who = identityOf(c);
      const { reason } = c.req.valid("json");
      try {
        const emergency = await overrideEmergency(
          {
            store,
            audit: {
              append: (e: AuditAppendInput) =>
                audit({
                  eventType: e.eventType,
                  agentId: e.agentId ?? who.subject,
                  details: e.details,
                }),
            },
            enabled: deps.overrideEnabled,
            now: iso,
          },
          who.subject || who.kid,
          reason,
        );
        return c.json({ emergency }, 200);
      } catch (e) {
        if (e instanceof EmergencyOverrideError) {
          if (e.code === "disabled") {
            // A refused override is itself worth a record: someone tried to lift emergency mode.
            await audit({
              eventType: "security.event",
              agentId: who.subject || who.kid,
              details: {
                category: "incident.override_refused",
                severity: "medium",
                description: "an emergency override was refused: overrides are disabled",
                kid: who.kid,
              },
            });
            throw new Problem(
              403,
              "forbidden",
              "Emergency override disabled",
              "[security] emergency_override_enabled is false",
            );
          }
          throw new Problem(
            409,
            "conflict",
            "Emergency mode is not on",
            e.code === "conflict" ? "emergency mode changed meanwhile" : "nothing to override",
          );
        }
        unavailable(e);
      }
    })
    .openapi(getRoute, async (c) => {
      const s = await get(c.req.valid("param").id);
      return c.json({ incident: s.record }, 200);
    })
    .openapi(evidenceRoute, async (c) => {
      const { id } = c.req.valid("param");
      await get(id);
      const bundle = await store.evidence(id).catch(unavailable);
      if (bundle === undefined)
        throw new Problem(404, "not-found", "Not found", `incident ${id} has no evidence bundle`);
      return c.json(JSON.parse(bundle) as Record<string, unknown>, 200);
    });
  for (const verb of Object.keys(moves) as (keyof typeof moves)[]) {
    r = r.openapi(moveRoute(verb), async (c) => {
      const who = identityOf(c);
      const { id } = c.req.valid("param");
      const { reason } = c.req.valid("json");
      const incident = await move(id, moves[verb], who.subject || who.kid, reason);
      return c.json({ incident }, 200);
    }) as typeof r;
  }
  return r;
}

function incidentDetails(r: Incident, change: string, by: string, reason: string) {
  return {
    incidentId: r.incidentId,
    change,
    state: r.state,
    severity: r.severity,
    detector: r.detector,
    category: r.category,
    rulesVersion: r.rulesVersion,
    subjects: r.subjects,
    keys: r.keys,
    workers: r.workers,
    jobs: r.jobs,
    by,
    reason,
  };
}

/**
 * Emergency mode's gate (after authentication): scope `jobs` refuses job submissions, `all` every
 * call but an admin's or an auditor's. The state is read at most every `cacheMs` per process, so
 * it takes effect within that; a store that cannot be read fails the gated calls closed.
 */
export function emergencyGate(store: IncidentStore, cacheMs = 250): MiddlewareHandler<AppEnv> {
  let cached: { at: number; value: Emergency | undefined } | undefined;
  const read = async () => {
    const t = Date.now();
    if (cached && t - cached.at < cacheMs) return cached.value;
    const value = (await store.emergency()).value;
    cached = { at: t, value };
    return value;
  };
  return async (c, next) => {
    const role = c.get("role");
    const jobSubmission = c.req.method === "POST" && c.req.path === "/v1/jobs";
    let e: Emergency | undefined;
    try {
      e = await read();
    } catch (err) {
      if (jobSubmission || (role !== "admin" && role !== "auditor"))
        throw new Problem(503, "unavailable", "Incident store unavailable", (err as Error).message);
      return next();
    }
    if (emergencyRefuses(e, { roles: role ? [role] : [], jobSubmission })) {
      const p = new Problem(
        503,
        "emergency-mode",
        "Emergency mode",
        e?.scope === "all"
          ? "emergency mode refuses every call but admin and auditor calls"
          : "emergency mode refuses job submissions",
      );
      p.headers = { "retry-after": "60" };
      throw p;
    }
    await next();
  };
}
