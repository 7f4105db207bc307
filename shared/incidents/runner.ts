// Detection over the growing audit trail, exactly once however many API processes run it
// (docs/incidents.md "Detection"). Each step reads the events after the stored cursor, verifies
// their chain, feeds them through the pure engine and stores the new cursor, the engine state and
// the incidents opened or joined in ONE compare-and-set (IncidentStore.advance): of two processes
// stepping over the same events one wins, the other re-reads. A process killed at any point
// either stored the step or did not; after a restart the next step starts where the stored
// cursor says, so no event is skipped or seen twice.
//
// The audit events of incident changes (incident.opened / updated / …) are written by the winner
// after its step and claimed on the record (an `audit` action, compare-and-set) so two processes
// never write one change twice; on a log that reserves nonces (Redis) each is appended under a
// nonce named by the change before the claim, so a kill between the two neither loses nor doubles
// it; `sweep` finishes what a killed process left.
import {
  type AppendOptions,
  type AuditAppendInput,
  AuditError,
  type AuditEvent,
  type VerifyReport,
} from "../audit";
import {
  type DetectEvent,
  type DetectionEngine,
  type EngineState,
  emptyState,
  type Finding,
} from "./engine";
import type { IncidentStore, StoredIncident } from "./ports";
import { type Incident, incidentEventType, joinFinding, openIncident, withAction } from "./record";
import { RULES_VERSION } from "./rules";

/** The audit service as detection uses it (shared/audit/service.ts AuditService fits). */
export interface AuditFeed {
  list(from: number, limit: number): Promise<{ events: AuditEvent[]; next: number | null }>;
  verify(from: number, to: number): Promise<VerifyReport>;
  append(input: AuditAppendInput, options?: AppendOptions): Promise<unknown>;
  /**
   * Whether append can reserve a nonce with the event (the Redis log): then each incident change
   * is appended under a nonce named by the change, so it is written exactly once, even across a
   * kill between the append and its claim on the record.
   */
  readonly reservesNonces?: boolean;
}

/** How long the nonce of an incident change's audit event is kept (far beyond any retry). */
const CHANGE_NONCE_TTL_S = 90 * 86_400;

export interface RunnerOptions {
  store: IncidentStore;
  audit: AuditFeed;
  engine: DetectionEngine;
  /** Events read per step. */
  batch: number;
  /** Called once per incident change the step made (after its audit event): the responder. */
  onChange?: (incident: StoredIncident) => Promise<void>;
  now?: () => string;
}

export interface StepResult {
  /** Events this step consumed (0: nothing new, or another process won). */
  processed: number;
  won: boolean;
  changed: string[];
}

interface StoredState {
  v: 1;
  engine: EngineState;
}

const SELF = "incident-response";

function parseState(json: string): EngineState {
  if (json === "") return emptyState();
  const s = JSON.parse(json) as StoredState;
  if (s?.v !== 1 || typeof s.engine !== "object")
    throw new RangeError("incident detection: unknown state version");
  return s.engine;
}

/** The part of an audit event detection reads. */
export const eventDetector = (e: AuditEvent): DetectEvent => ({
  index: e.index,
  timestamp: e.timestamp,
  eventType: e.eventType,
  agentId: e.agentId,
  details: e.details,
});

export class DetectionRunner {
  readonly #o: RunnerOptions;

  constructor(o: RunnerOptions) {
    if (!Number.isInteger(o.batch) || o.batch < 1)
      throw new RangeError("incident detection: bad batch");
    this.#o = o;
  }

  /** One step: at most `batch` events, stored with their findings in one compare-and-set. */
  async step(): Promise<StepResult> {
    const { store, audit, engine } = this.#o;
    const cp = await store.detection();
    const cursor = cp.cursor;
    const report = await audit.verify(cursor, cursor + this.#o.batch);
    const bad =
      report.firstInvalid && report.firstInvalid.index >= cursor ? report.firstInvalid : undefined;
    // Verified events only: up to the bad one, or as many as verify checked.
    const end = bad ? bad.index : cursor + report.checked;
    const events: DetectEvent[] = [];
    if (end > cursor) {
      const page = await audit.list(cursor, end - cursor);
      for (const e of page.events)
        if (e.index >= cursor && e.index < end) events.push(eventDetector(e));
    }
    if (bad) {
      // The trail itself says it was tampered with: the bad event is replaced, in the engine's
      // input, by the signal the audit-integrity rule reads. The cursor passes it once.
      const last = events.at(-1);
      events.push({
        index: bad.index,
        timestamp: last?.timestamp ?? this.#now(),
        eventType: "security.event",
        agentId: "system",
        details: {
          category: "audit.integrity",
          index: bad.index,
          code: bad.code,
          reason: bad.reason,
        },
      });
    }
    if (events.length === 0) return { processed: 0, won: false, changed: [] };
    const state = parseState(cp.state);
    await this.#forgetClosed(state);
    const findings = engine.step(state, events);
    const next = {
      cursor: events.at(-1)!.index + 1,
      state: JSON.stringify({ v: 1, engine: state }),
    };
    const opened = new Map<string, Incident>();
    const updated = new Map<string, StoredIncident>();
    for (const f of findings) await this.#apply(f, opened, updated);
    const won = await store.advance(cursor, next, [...opened.values()], [...updated.values()]);
    if (!won) return { processed: 0, won: false, changed: [] };
    const changed = [...opened.keys(), ...updated.keys()];
    for (const id of changed) await this.finish(id);
    return { processed: next.cursor - cursor, won: true, changed };
  }

  /**
   * An incident an admin resolved (or marked false positive) no longer absorbs its subject's new
   * findings: the next one opens a new incident instead of being folded into a closed record.
   */
  async #forgetClosed(state: EngineState): Promise<void> {
    const ids = [...new Set(Object.values(state.open).map((c) => c.id))].slice(0, 64);
    const closed = new Set<string>();
    await Promise.all(
      ids.map(async (id) => {
        const s = await this.#o.store.get(id);
        if (s && (s.record.state === "resolved" || s.record.state === "false_positive"))
          closed.add(id);
      }),
    );
    for (const [k, c] of Object.entries(state.open)) if (closed.has(c.id)) delete state.open[k];
  }

  async #apply(
    f: Finding,
    opened: Map<string, Incident>,
    updated: Map<string, StoredIncident>,
  ): Promise<void> {
    if (f.kind === "open") {
      opened.set(f.incidentId, openIncident(f, RULES_VERSION));
      return;
    }
    const fresh = opened.get(f.incidentId);
    if (fresh) {
      opened.set(f.incidentId, joinFinding(fresh, f));
      return;
    }
    const cur = updated.get(f.incidentId) ?? (await this.#o.store.get(f.incidentId));
    // Joined to an incident that is gone (or closed): nothing to join; the engine forgets it with
    // its correlation window.
    if (!cur || cur.record.state === "resolved" || cur.record.state === "false_positive") return;
    updated.set(f.incidentId, { rev: cur.rev, record: joinFinding(cur.record, f) });
  }

  #now(): string {
    return this.#o.now ? this.#o.now() : new Date().toISOString();
  }

  /**
   * Writes the audit events of an incident's timeline entries not yet audited (each claimed on
   * the record first), then hands the record to the responder.
   */
  async finish(id: string): Promise<void> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const cur = await this.#o.store.get(id);
      if (!cur) return;
      const done = new Set(
        cur.record.actions.filter((a) => a.action === "audit").map((a) => a.target),
      );
      const todo = cur.record.timeline.findIndex((_, i) => !done.has(`timeline:${i}`));
      if (todo < 0) {
        if (this.#o.onChange) await this.#o.onChange(cur);
        return;
      }
      const entry = cur.record.timeline[todo]!;
      const claimed = withAction(cur.record, {
        action: "audit",
        target: `timeline:${todo}`,
        at: this.#now(),
        by: SELF,
        outcome: "done",
        detail: null,
      });
      const r = cur.record;
      const idempotent = this.#o.audit.reservesNonces === true;
      // Without nonces: claim first, then write (a kill in between loses that one event, never
      // doubles it). With them: write first under the change's nonce, then claim; a retry after a
      // kill finds the nonce used (`replay`: the event is stored) and only claims.
      if (!idempotent && !(await this.#o.store.swap(id, cur.rev, claimed))) continue;
      const event = {
        eventType: incidentEventType(entry.change),
        agentId: SELF,
        details: {
          incidentId: r.incidentId,
          change: entry.change,
          state: entry.state,
          severity: entry.severity,
          detector: r.detector,
          category: r.category,
          rulesVersion: r.rulesVersion,
          subjects: r.subjects,
          keys: r.keys,
          workers: r.workers,
          jobs: r.jobs,
          eventIndexes: r.evidence.eventIndexes.slice(0, 64),
          actions: r.actions
            .filter((a) => a.action !== "audit")
            .slice(-64)
            .map((a) => ({ action: a.action, target: a.target, outcome: a.outcome })),
          by: entry.by,
          reason: entry.reason,
        },
      };
      if (!idempotent) {
        await this.#o.audit.append(event);
        continue;
      }
      try {
        await this.#o.audit.append(event, {
          nonce: { keyid: SELF, nonce: `${r.incidentId}:${todo}`, ttlSeconds: CHANGE_NONCE_TTL_S },
        });
      } catch (e) {
        if (!(e instanceof AuditError && e.code === "replay")) throw e;
      }
      await this.#o.store.swap(id, cur.rev, claimed);
    }
  }

  /**
   * Finishes what a killed process left undone on the newest incidents: unwritten audit events,
   * and (through `onChange`, whose steps skip what is already recorded) unfinished responses.
   */
  async sweep(limit = 100): Promise<void> {
    for (const s of await this.#o.store.list({ limit }))
      if (s.record.state !== "resolved" && s.record.state !== "false_positive")
        await this.finish(s.record.incidentId);
  }

  /** Steps until nothing is left (tests, benches, catching up after a restart). */
  async drain(maxSteps = 10_000): Promise<number> {
    let total = 0;
    for (let i = 0; i < maxSteps; i++) {
      const r = await this.step();
      if (r.processed === 0 && !r.won) {
        // Lost a race or nothing new: look again once to tell the two apart.
        const again = await this.step();
        if (again.processed === 0) return total;
        total += again.processed;
        continue;
      }
      total += r.processed;
    }
    return total;
  }
}
