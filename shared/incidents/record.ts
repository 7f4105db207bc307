// Incident records (docs/incidents.md "Incidents"). States move forward only: open →
// acknowledged → mitigated → resolved, or → false_positive from any state before resolved. Every
// change is a pure function of the record; the store only compares and swaps, and the caller
// writes the matching audit event (incident.opened / updated / mitigated / resolved).
import { z } from "zod";
import { SEVERITIES, type Severity } from "../audit";
import type { Finding } from "./engine";

export const IncidentIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, "a lower-case UUID")
  .meta({ description: "incident id (UUID)" });

export const INCIDENT_STATES = [
  "open",
  "acknowledged",
  "mitigated",
  "resolved",
  "false_positive",
] as const;
export const IncidentStateSchema = z.enum(INCIDENT_STATES);
export type IncidentState = z.infer<typeof IncidentStateSchema>;
export const SeveritySchema = z.enum(SEVERITIES);

const text = (n: number) => z.string().max(n);
const ids = z.array(text(512)).max(256);

export const IncidentActionSchema = z.object({
  action: text(64),
  target: text(512).nullable(),
  at: text(64),
  by: text(256),
  outcome: z.enum(["done", "failed", "skipped"]),
  detail: text(2048).nullable(),
});
export type IncidentAction = z.infer<typeof IncidentActionSchema>;

export const TimelineEntrySchema = z.object({
  at: text(64),
  by: text(256),
  change: text(64),
  state: IncidentStateSchema,
  severity: SeveritySchema,
  reason: text(4096).nullable(),
});

export const IncidentSchema = z.object({
  incidentId: IncidentIdSchema,
  rulesVersion: text(64),
  severity: SeveritySchema,
  category: text(64),
  detector: text(64),
  state: IncidentStateSchema,
  openedAt: text(64),
  updatedAt: text(64),
  subjects: ids,
  keys: ids,
  workers: ids,
  jobs: ids,
  evidence: z.object({
    from: z.number().int().min(0),
    to: z.number().int().min(0),
    eventIndexes: z.array(z.number().int().min(0)).max(1024),
    /** Set once the signed bundle is stored (GET /v1/incidents/:id/evidence). */
    bundle: z.object({ treeSize: z.number().int(), sha256: text(64) }).nullable(),
  }),
  actions: z.array(IncidentActionSchema).max(256),
  timeline: z.array(TimelineEntrySchema).max(256),
});
export type Incident = z.infer<typeof IncidentSchema>;

const ORDER: Record<IncidentState, number> = {
  open: 0,
  acknowledged: 1,
  mitigated: 2,
  resolved: 3,
  false_positive: 3,
};

export class IncidentTransitionError extends Error {
  constructor(
    readonly from: IncidentState,
    readonly to: IncidentState,
  ) {
    super(`incident cannot move from ${from} to ${to}`);
    this.name = "IncidentTransitionError";
  }
}

/** Whether `to` is forward of `from` (states never move back, terminal states never move). */
export function canMove(from: IncidentState, to: IncidentState): boolean {
  if (from === "resolved" || from === "false_positive") return false;
  return ORDER[to] > ORDER[from];
}

export function openIncident(f: Finding, rulesVersion: string): Incident {
  const s = f.subject;
  return {
    incidentId: f.incidentId,
    rulesVersion,
    severity: f.severity,
    category: f.category,
    detector: f.detector,
    state: "open",
    openedAt: f.at,
    updatedAt: f.at,
    subjects: s.kind === "subject" ? [s.id] : [],
    keys: s.kind === "key" || s.kind === "worker" ? [s.id] : [],
    workers: s.kind === "worker" ? [s.id] : [],
    jobs: [...f.jobs],
    evidence: {
      from: Math.min(...f.eventIndexes),
      to: Math.max(...f.eventIndexes) + 1,
      eventIndexes: f.eventIndexes.slice(-1024),
      bundle: null,
    },
    actions: [],
    timeline: [
      {
        at: f.at,
        by: "incident-response",
        change: "opened",
        state: "open",
        severity: f.severity,
        reason: null,
      },
    ],
  };
}

const union = <T>(a: readonly T[], b: readonly T[], n: number) =>
  [...new Set([...a, ...b])].slice(-n);

/** A later finding of the same detector and subject: escalates and widens the evidence. */
export function joinFinding(r: Incident, f: Finding): Incident {
  const escalated = SEVERITIES.indexOf(f.severity) > SEVERITIES.indexOf(r.severity);
  if (!escalated && f.eventIndexes.every((i) => r.evidence.eventIndexes.includes(i))) return r;
  const indexes = union(r.evidence.eventIndexes, f.eventIndexes, 1024);
  return {
    ...r,
    severity: escalated ? f.severity : r.severity,
    updatedAt: f.at,
    jobs: union(r.jobs, f.jobs, 256),
    evidence: {
      ...r.evidence,
      from: Math.min(r.evidence.from, ...f.eventIndexes),
      to: Math.max(r.evidence.to, Math.max(...f.eventIndexes) + 1),
      eventIndexes: indexes,
    },
    timeline: escalated
      ? [
          ...r.timeline,
          {
            at: f.at,
            by: "incident-response",
            change: "escalated",
            state: r.state,
            severity: f.severity,
            reason: null,
          },
        ].slice(-256)
      : r.timeline,
  };
}

export function moveIncident(
  r: Incident,
  to: IncidentState,
  by: string,
  at: string,
  reason: string | null,
): Incident {
  if (!canMove(r.state, to)) throw new IncidentTransitionError(r.state, to);
  return {
    ...r,
    state: to,
    updatedAt: at,
    timeline: [
      ...r.timeline,
      { at, by, change: to, state: to, severity: r.severity, reason },
    ].slice(-256),
  };
}

/**
 * Records an action. Past 256 the oldest failed attempts go first: done entries and audit claims
 * are what keeps a step or an audit event from being repeated, so they are the last to go.
 */
export function withAction(r: Incident, a: IncidentAction): Incident {
  const actions = [...r.actions, a];
  while (actions.length > 256) {
    const i = actions.findIndex((x) => x.outcome === "failed");
    actions.splice(Math.max(i, 0), 1);
  }
  return { ...r, updatedAt: a.at, actions };
}

/** The audit event type of a change to `state` (docs/incidents.md). */
export function incidentEventType(change: string): string {
  if (change === "opened") return "incident.opened";
  if (change === "mitigated") return "incident.mitigated";
  if (change === "resolved" || change === "false_positive") return "incident.resolved";
  return "incident.updated";
}

export type { Severity };
