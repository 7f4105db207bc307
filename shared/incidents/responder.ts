// Automatic response by severity (docs/incidents.md "Response"): medium → a signed alert webhook;
// high → isolate the subject, key or worker the evidence names (the quarantine service behind
// `Isolation`), revoke the key ids it names, and a signed evidence bundle; critical → also
// emergency mode and the emergency webhook channel. `policy_violation_action` caps the response to
// a policy-violation burst (log: record only; alert: no isolation; block: everything).
//
// Every action is recorded on the incident (and so audited with its incident.mitigated event) and
// idempotent: the effects that are idempotent themselves (quarantine, revocation, write-once
// evidence, emergency compare-and-set) are done first and recorded after, so a retry after a crash
// redoes nothing harmful; a webhook, which is not, is claimed on the record first, so two
// processes never send one twice.
import type { AuditAppendInput } from "../audit";
import type { Signer } from "../crypto";
import { toHex, utf8 } from "../encoding";
import type { Isolation, QuarantineTarget } from "../quarantine/types";
import { ruleOf } from "./engine";
import { buildEvidence, type EvidenceSource } from "./evidence";
import type { Emergency, IncidentStore, StoredIncident } from "./ports";
import { type Incident, type IncidentAction, moveIncident, withAction } from "./record";

export type ViolationAction = "log" | "alert" | "block";

/** `[security] policy_violation_action`, with the older names (deny = log, the others = alert). */
export function violationAction(v: string): ViolationAction {
  if (v === "log" || v === "alert" || v === "block") return v;
  return v === "deny" ? "log" : "alert";
}

export interface ResponderOptions {
  store: IncidentStore;
  evidence: EvidenceSource;
  signer: Signer;
  isolation?: Isolation;
  /** Revokes a key (the key manager, which audits key.revoked); resolves also if already revoked. */
  revoke?: (kid: string, reason: string) => Promise<void>;
  /** Publishes to `[incidents] alert_webhooks` / `emergency_webhooks` (never waits for delivery). */
  publish?: (channel: "alert" | "emergency", body: Record<string, unknown>) => void;
  policyViolationAction: ViolationAction;
  emergencyScope: "jobs" | "all";
  now?: () => string;
}

export const RESPONDER = "incident-response";

/** Failed attempts recorded for one step before it is given up (docs/incidents.md "Response"). */
export const MAX_FAILURES = 3;

const SEV = ["info", "low", "medium", "high", "critical"];
const atLeast = (r: Incident, s: string) => SEV.indexOf(r.severity) >= SEV.indexOf(s);

interface Step {
  action: string;
  target: string | null;
  /** true: claim on the record first (not idempotent), false: do, then record. */
  claim: boolean;
  run: () => Promise<string | null>;
}

export class Responder {
  readonly #o: ResponderOptions;

  constructor(o: ResponderOptions) {
    this.#o = o;
  }

  #now(): string {
    return this.#o.now ? this.#o.now() : new Date().toISOString();
  }

  /** The actions an incident calls for now (those already recorded as done are skipped). */
  #plan(r: Incident): Step[] {
    if (r.state === "resolved" || r.state === "false_positive") return [];
    const rule = ruleOf(r.detector);
    const cap: ViolationAction = rule?.actionSetting ? this.#o.policyViolationAction : "block";
    const steps: Step[] = [];
    const summary = {
      incidentId: r.incidentId,
      severity: r.severity,
      detector: r.detector,
      category: r.category,
      subjects: r.subjects,
      keys: r.keys,
      workers: r.workers,
      openedAt: r.openedAt,
    };
    if (atLeast(r, "medium") && cap !== "log" && this.#o.publish)
      steps.push({
        action: "alert",
        target: `alert:${r.severity}`,
        claim: true,
        run: async () => {
          this.#o.publish!("alert", { type: "incident.alert", incident: summary });
          return null;
        },
      });
    if (!atLeast(r, "high")) return steps;
    if (cap === "block" && this.#o.isolation && rule) {
      const targets: QuarantineTarget[] = [];
      if (rule.isolate === "worker")
        for (const w of r.workers) targets.push({ kind: "worker", workerId: w });
      if (rule.isolate === "key") {
        for (const k of r.keys) targets.push({ kind: "key", kid: k });
        for (const s of r.subjects)
          if (!s.startsWith("address:")) targets.push({ kind: "subject", subject: s });
      }
      for (const t of targets) {
        const id = t.kind === "worker" ? t.workerId : t.kind === "key" ? t.kid : t.subject;
        steps.push({
          action: "quarantine",
          target: `${t.kind}:${id}`,
          claim: false,
          run: async () => {
            const q = await this.#o.isolation!.place({
              target: t,
              reason: `incident ${r.incidentId} (${r.detector})`,
              incidentId: r.incidentId,
              by: RESPONDER,
            });
            return `quarantine ${q.id}`;
          },
        });
      }
    }
    if (rule?.revoke && this.#o.revoke)
      for (const k of r.keys)
        steps.push({
          action: "revoke",
          target: `key:${k}`,
          claim: false,
          run: async () => {
            await this.#o.revoke!(k, `incident ${r.incidentId} (${r.detector})`);
            return null;
          },
        });
    steps.push({
      action: "evidence",
      target: null,
      claim: false,
      run: async () => {
        const bundle = await buildEvidence(r, this.#o.evidence, this.#o.signer, this.#now());
        // Write-once: of two processes the first bundle stays.
        await this.#o.store.putEvidence(r.incidentId, bundle);
        return null;
      },
    });
    if (!atLeast(r, "critical")) return steps;
    steps.push({
      action: "emergency",
      target: this.#o.emergencyScope,
      claim: false,
      run: async () => {
        for (let i = 0; i < 8; i++) {
          const cur = await this.#o.store.emergency();
          if (cur.value?.active) return "already active";
          const next: Emergency = {
            active: true,
            incidentId: r.incidentId,
            scope: this.#o.emergencyScope,
            since: this.#now(),
            by: RESPONDER,
            reason: `incident ${r.incidentId} (${r.detector})`,
          };
          if (await this.#o.store.swapEmergency(cur.rev, next)) return null;
        }
        throw new Error("emergency mode: too much contention");
      },
    });
    if (this.#o.publish)
      steps.push({
        action: "alert",
        target: "emergency",
        claim: true,
        run: async () => {
          this.#o.publish!("emergency", { type: "incident.emergency", incident: summary });
          return null;
        },
      });
    return steps;
  }

  /**
   * Applies what the incident calls for and not yet done; moves it to `mitigated` once a high or
   * critical incident's steps are all done. Returns whether the record changed.
   */
  async respond(id: string): Promise<boolean> {
    let changed = false;
    // Steps that failed in this pass: recorded once, not retried here, and they do not hold up
    // the steps after them (emergency mode must not wait on an evidence bundle that failed).
    const failed = new Set<string>();
    for (let attempt = 0; attempt < 32; attempt++) {
      const cur = await this.#o.store.get(id);
      if (!cur) return changed;
      const r = cur.record;
      const done = new Set(
        r.actions.filter((a) => a.outcome === "done").map((a) => `${a.action}|${a.target}`),
      );
      const failures = new Map<string, number>();
      for (const a of r.actions)
        if (a.outcome === "failed") {
          const k = `${a.action}|${a.target}`;
          failures.set(k, (failures.get(k) ?? 0) + 1);
        }
      const plan = this.#plan(r);
      // A step that failed MAX_FAILURES times is given up (the incident stays unmitigated, its
      // failed actions on the record for an admin): a response that changed the record is
      // followed by another pass (functions/incident-response.ts), so without a bound a step that
      // always fails (an unknown key) was retried, and recorded, without end.
      const step = plan.find((s) => {
        const k = `${s.action}|${s.target}`;
        return !done.has(k) && !failed.has(k) && (failures.get(k) ?? 0) < MAX_FAILURES;
      });
      // Mitigated only once every step is done: not after a failure, nor with a step given up.
      const complete = failed.size === 0 && plan.every((s) => done.has(`${s.action}|${s.target}`));
      if (!step) return complete ? (await this.#mitigated(cur)) || changed : changed;
      const entry = (
        outcome: IncidentAction["outcome"],
        detail: string | null,
      ): IncidentAction => ({
        action: step.action,
        target: step.target,
        at: this.#now(),
        by: RESPONDER,
        outcome,
        detail,
      });
      if (step.claim) {
        if (!(await this.#o.store.swap(id, cur.rev, withAction(r, entry("done", null))))) continue;
        changed = true;
        await step.run().catch(() => undefined);
        continue;
      }
      let detail: string | null;
      let outcome: IncidentAction["outcome"] = "done";
      try {
        detail = await step.run();
      } catch (e) {
        outcome = "failed";
        detail = (e instanceof Error ? e.message : String(e)).slice(0, 2048);
      }
      let next = withAction(r, entry(outcome, detail));
      if (step.action === "evidence" && outcome === "done") {
        const bundle = await this.#o.store.evidence(id);
        if (bundle) {
          const sha = await sha256Hex(bundle);
          next = {
            ...next,
            evidence: { ...next.evidence, bundle: { treeSize: r.evidence.to, sha256: sha } },
          };
        }
      }
      if (await this.#o.store.swap(id, cur.rev, next)) {
        changed = true;
        if (outcome === "failed") failed.add(`${step.action}|${step.target}`);
      }
    }
    return changed;
  }

  async #mitigated(cur: StoredIncident): Promise<boolean> {
    const r = cur.record;
    if (!atLeast(r, "high") || (r.state !== "open" && r.state !== "acknowledged")) return false;
    return this.#o.store.swap(
      r.incidentId,
      cur.rev,
      moveIncident(r, "mitigated", RESPONDER, this.#now(), null),
    );
  }
}

async function sha256Hex(s: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(utf8(s)))));
}

export class EmergencyOverrideError extends Error {
  constructor(readonly code: "disabled" | "inactive" | "conflict") {
    super(`emergency override: ${code}`);
    this.name = "EmergencyOverrideError";
  }
}

/**
 * An admin lifts emergency mode (only with `[security] emergency_override_enabled`): the reason
 * arrives in the admin's signed request, and the override is audited as an incident event.
 */
export async function overrideEmergency(
  deps: {
    store: IncidentStore;
    audit: { append(input: AuditAppendInput): Promise<unknown> };
    enabled: boolean;
    now?: () => string;
  },
  by: string,
  reason: string,
): Promise<Emergency> {
  if (!deps.enabled) throw new EmergencyOverrideError("disabled");
  const cur = await deps.store.emergency();
  if (!cur.value?.active) throw new EmergencyOverrideError("inactive");
  const next: Emergency = {
    ...cur.value,
    active: false,
    since: deps.now ? deps.now() : new Date().toISOString(),
    by,
    reason,
  };
  if (!(await deps.store.swapEmergency(cur.rev, next)))
    throw new EmergencyOverrideError("conflict");
  await deps.audit.append({
    eventType: "incident.updated",
    agentId: by,
    details: {
      change: "emergency_override",
      incidentId: cur.value.incidentId,
      scope: cur.value.scope,
      by,
      reason,
    },
  });
  return next;
}

/**
 * Whether emergency mode refuses a call (docs/incidents.md): scope `jobs` refuses job submissions,
 * `all` every call but an admin's or an auditor's.
 */
export function emergencyRefuses(
  e: Emergency | undefined,
  call: { roles: readonly string[]; jobSubmission: boolean },
): boolean {
  if (!e?.active) return false;
  if (e.scope === "jobs") return call.jobSubmission;
  return !call.roles.some((r) => r === "admin" || r === "auditor");
}
