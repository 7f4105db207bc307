// The check vocabulary evaluated in one pass over a period's events (docs/compliance.md "Checks").
// Each check sees every event once, in index order, and keeps only what its verdict needs, so a
// report over millions of events is one streaming scan.
import type { AuditEvent, VerifyReport } from "../audit";
import { ERASED, SEALED_PREFIX, SUBJECT_FIELD } from "../subjects";
import type { Check } from "./framework";

export type ControlStatus = "met" | "not_met" | "not_applicable";

/** What a report knows about the configuration and the key registry (not in the trail). */
export interface ComplianceFacts {
  retentionDays: number;
  /** Whether the runtime prunes past retention (Node) or keeps every event (edge). */
  retentionEnforced: boolean;
  encryptionAtRest: boolean;
  /** The key registry's view: revocations before the period, and each key's subject and role. */
  keys?: readonly { kid: string; subject: string; role: string; revokedAt?: string }[];
}

export interface CheckOutcome {
  status: ControlStatus;
  /** Events the check examined. */
  count: number;
  /** Events cited as evidence: the offending ones first, else a sample of those examined. */
  cited: number[];
  findings: string[];
}

export interface CheckContext {
  facts: ComplianceFacts;
  period: { from: string; to: string };
  chain: VerifyReport;
}

export interface CheckRun {
  see(e: AuditEvent): void;
  finish(ctx: CheckContext): CheckOutcome;
}

/** Bounds on a control's evidence, so a report stays small whatever the period holds. */
export const MAX_CITED = 16;
export const MAX_FINDINGS = 16;
const SAMPLE = 3;

/** Event types the trail records for identities that are not an authenticated subject. */
const UNAUTHENTICATED = new Set(["anonymous", "unknown", "-"]);

function matcher(patterns: readonly string[]): (t: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith(".*")));
  const prefixes = patterns.filter((p) => p.endsWith(".*")).map((p) => p.slice(0, -1));
  return (t) => exact.has(t) || prefixes.some((p) => t.startsWith(p));
}

const str = (v: unknown): string | undefined =>
  typeof v === "string" && v.length > 0 ? v : undefined;

class Evidence {
  count = 0;
  readonly bad: number[] = [];
  readonly sample: number[] = [];
  readonly findings: string[] = [];
  seen(index: number): void {
    this.count++;
    if (this.sample.length < SAMPLE) this.sample.push(index);
  }
  flag(indexes: readonly number[], finding: string): void {
    for (const i of indexes)
      if (this.bad.length < MAX_CITED && !this.bad.includes(i)) this.bad.push(i);
    if (this.findings.length < MAX_FINDINGS) this.findings.push(finding);
    else if (this.findings.length === MAX_FINDINGS)
      this.findings.push("… further findings omitted");
  }
  outcome(status?: ControlStatus): CheckOutcome {
    const failed = this.findings.length > 0;
    return {
      status: status ?? (failed ? "not_met" : "met"),
      count: this.count,
      cited: failed ? [...this.bad] : [...this.sample],
      findings: [...this.findings],
    };
  }
}

function authenticatedSubject(eventTypes: readonly string[]): CheckRun {
  const match = matcher(eventTypes);
  const ev = new Evidence();
  return {
    see(e) {
      if (!match(e.eventType)) return;
      ev.seen(e.index);
      if (UNAUTHENTICATED.has(e.agentId))
        ev.flag([e.index], `event ${e.index} (${e.eventType}) names no authenticated subject`);
    },
    finish: () => ev.outcome(),
  };
}

function changeApproved(c: Extract<Check, { kind: "change-approved" }>): CheckRun {
  const match = matcher(c.eventTypes);
  const ev = new Evidence();
  return {
    see(e) {
      if (!match(e.eventType)) return;
      ev.seen(e.index);
      const missing: string[] = [];
      if (c.requireReason && !str(e.details.reason)) missing.push("a reason");
      if (c.requireApproval) {
        const approver = str(e.details.approvedBy);
        if (!str(e.details.approvalId) || !approver) missing.push("an approval");
        // Separation of duties: the approver is a second person.
        else if (approver === e.agentId) missing.push("an approval by a second person");
      }
      if (missing.length > 0)
        ev.flag(
          [e.index],
          `event ${e.index} (${e.eventType} by ${e.agentId}) has no ${missing.join(" and no ")}`,
        );
    },
    finish: () => ev.outcome(),
  };
}

// The key that acted (docs/audit.md): `details.kid` on a policy decision (the key that signed the
// request) and on `signature.created` (the held key that signed), the submitting key on
// `job.submitted` (its agentId), `details.submittedBy` on the events a client appends. A revoked
// key that shows up there after its revocation made a request that succeeded.
const KID_ACTS = new Set(["policy.decision", "policy.violation", "signature.created"]);
function actingKid(e: { eventType: string; agentId: string; details: Record<string, unknown> }) {
  if (KID_ACTS.has(e.eventType)) return str(e.details.kid);
  if (e.eventType === "job.submitted") return e.agentId;
  return str(e.details.submittedBy);
}

function revokedKeysUnused(facts: ComplianceFacts): CheckRun {
  const revoked = new Map<string, { at: number; index?: number }>();
  for (const k of facts.keys ?? []) {
    if (k.revokedAt !== undefined) revoked.set(k.kid, { at: Date.parse(k.revokedAt) });
  }
  const ev = new Evidence();
  let naming = 0;
  return {
    see(e) {
      if (e.eventType === "key.revoked") {
        const kid = str(e.details.kid);
        if (kid) {
          const at = Date.parse(str(e.details.at) ?? e.timestamp);
          const prev = revoked.get(kid);
          if (!prev || prev.at > at) revoked.set(kid, { at, index: e.index });
        }
        return;
      }
      const kid = actingKid(e);
      if (!kid) return;
      naming++;
      ev.seen(e.index);
      const r = revoked.get(kid);
      if (r && Date.parse(e.timestamp) > r.at)
        ev.flag(
          r.index === undefined ? [e.index] : [r.index, e.index],
          `key ${kid} revoked at ${new Date(r.at).toISOString()} was used by event ${e.index} (${e.eventType}) at ${e.timestamp}`,
        );
    },
    finish() {
      if (naming === 0) {
        const o = ev.outcome("not_applicable");
        o.findings.push(
          "no event in the period names its acting key (a decision's details.kid, a job's submitter, submittedBy)",
        );
        return o;
      }
      return ev.outcome();
    },
  };
}

function rolesSeparated(roles: readonly [string, string], facts: ComplianceFacts): CheckRun {
  const held = new Map<string, Map<string, number | undefined>>();
  const hold = (subject: string, role: string, index?: number) => {
    if (!roles.includes(role)) return;
    let m = held.get(subject);
    if (!m) {
      m = new Map();
      held.set(subject, m);
    }
    if (!m.has(role) || index !== undefined) m.set(role, index);
  };
  for (const k of facts.keys ?? []) hold(k.subject, k.role);
  const ev = new Evidence();
  return {
    see(e) {
      if (e.eventType !== "key.created" && e.eventType !== "key.rotated") return;
      ev.seen(e.index);
      const subject = str(e.details.subject);
      const role = str(e.details.role);
      if (subject && role) hold(subject, role, e.index);
    },
    finish() {
      for (const [subject, m] of held) {
        if (m.has(roles[0]) && m.has(roles[1]))
          ev.flag(
            [...m.values()].filter((i): i is number => i !== undefined),
            `subject ${subject} holds both ${roles[0]} and ${roles[1]} keys`,
          );
      }
      return ev.outcome();
    },
  };
}

function retentionMinimum(minDays: number): CheckRun {
  const ev = new Evidence();
  return {
    see(e) {
      if (e.eventType === "audit.retained") ev.seen(e.index);
    },
    finish({ facts }) {
      if (facts.retentionDays < minDays)
        ev.flag(
          [],
          `audit_retention_days is ${facts.retentionDays}, below the minimum of ${minDays}`,
        );
      return ev.outcome();
    },
  };
}

function incidentTimeliness(c: Extract<Check, { kind: "incident-timeliness" }>): CheckRun {
  const severities = new Set<string>(c.severities);
  const targetMs = c.withinHours * 3600_000;
  const open = new Map<string, { index: number; openedAt: number; severity: string }>();
  const ev = new Evidence();
  return {
    see(e) {
      const id = str(e.details.incidentId);
      if (!id) return;
      if (e.eventType === "incident.opened") {
        const severity = str(e.details.severity);
        if (!severity || !severities.has(severity)) return;
        const openedAt = Date.parse(str(e.details.openedAt) ?? e.timestamp);
        ev.seen(e.index);
        open.set(id, {
          index: e.index,
          openedAt: Number.isFinite(openedAt) ? openedAt : Date.parse(e.timestamp),
          severity,
        });
      } else if (e.eventType === "incident.mitigated" || e.eventType === "incident.resolved") {
        const o = open.get(id);
        if (!o) return;
        open.delete(id);
        const took = Date.parse(e.timestamp) - o.openedAt;
        if (took > targetMs)
          ev.flag(
            [o.index, e.index],
            `${o.severity} incident ${id} was mitigated after ${(took / 3600_000).toFixed(1)} h (target ${c.withinHours} h)`,
          );
      }
    },
    finish({ period }) {
      const end = Date.parse(period.to);
      for (const [id, o] of open) {
        if (end - o.openedAt > targetMs)
          ev.flag(
            [o.index],
            `${o.severity} incident ${id} was not mitigated within ${c.withinHours} h`,
          );
      }
      return ev.outcome();
    },
  };
}

function chainVerifies(): CheckRun {
  const ev = new Evidence();
  return {
    see(e) {
      ev.seen(e.index);
    },
    finish({ chain }) {
      if (!chain.valid) {
        const f = chain.firstInvalid;
        ev.flag(
          f ? [f.index] : [],
          f ? `event ${f.index}: ${f.code}: ${f.reason}` : "the period does not verify",
        );
      }
      return ev.outcome();
    },
  };
}

function encryptionAtRest(): CheckRun {
  const ev = new Evidence();
  return {
    see() {},
    finish({ facts }) {
      if (!facts.encryptionAtRest) ev.flag([], "keys are not encrypted at rest");
      return ev.outcome();
    },
  };
}

function personalDataSealed(eventTypes: readonly string[]): CheckRun {
  const match = matcher(eventTypes);
  const ev = new Evidence();
  return {
    see(e) {
      if (!match(e.eventType) || !Object.hasOwn(e.details, SUBJECT_FIELD)) return;
      ev.seen(e.index);
      const v = e.details[SUBJECT_FIELD];
      if (!(typeof v === "string" && (v.startsWith(SEALED_PREFIX) || v === ERASED)))
        ev.flag([e.index], `event ${e.index} (${e.eventType}) holds its data subject in the clear`);
    },
    finish: () => ev.outcome(),
  };
}

export function startCheck(check: Check, facts: ComplianceFacts): CheckRun {
  switch (check.kind) {
    case "authenticated-subject":
      return authenticatedSubject(check.eventTypes);
    case "change-approved":
      return changeApproved(check);
    case "revoked-keys-unused":
      return revokedKeysUnused(facts);
    case "roles-separated":
      return rolesSeparated(check.roles, facts);
    case "retention-minimum":
      return retentionMinimum(check.minDays);
    case "incident-timeliness":
      return incidentTimeliness(check);
    case "chain-verifies":
      return chainVerifies();
    case "encryption-at-rest":
      return encryptionAtRest();
    case "personal-data-sealed":
      return personalDataSealed(check.eventTypes);
  }
}
