// The detection engine (docs/incidents.md "Detection"): a pure function of its state and the audit
// events in index order. It never reads a clock (time is the events' timestamps), so the same
// trail gives the same findings on every process and after every restart; the caller persists
// the returned state together with the cursor (runner.ts), which is what makes detection
// exactly-once. Correlation: a finding of a detector about a subject that already has an incident
// of that detector within the correlation window joins it (escalating its severity if needed)
// instead of opening a new one; a join that changes nothing is dropped (de-duplication).
import { SEVERITIES, type Severity } from "../audit";
import type { SigilConfig } from "../config";
import {
  type EventMatch,
  type IncidentNumber,
  RULES,
  type Rule,
  type SubjectSource,
} from "./rules";

export type IncidentsConfig = SigilConfig["incidents"];

export interface EngineSettings {
  readonly incidents: IncidentsConfig;
  readonly sandboxEscapeDetection: boolean;
}

/** The part of an audit event detection reads. */
export interface DetectEvent {
  readonly index: number;
  readonly timestamp: string;
  readonly eventType: string;
  readonly agentId: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export type SubjectKind = "key" | "subject" | "worker";

export interface Finding {
  /** "open" a new incident, or "join" the open one named by incidentId. */
  readonly kind: "open" | "join";
  readonly incidentId: string;
  readonly detector: string;
  readonly category: string;
  readonly severity: Severity;
  readonly subject: { readonly kind: SubjectKind; readonly id: string };
  readonly jobs: readonly string[];
  readonly eventIndexes: readonly number[];
  readonly at: string;
}

interface Hit {
  t: number;
  w: number;
  i: number;
}

interface Correlated {
  id: string;
  until: number;
  severity: Severity;
}

export interface EngineState {
  v: 1;
  /** detector \0 subject → recent matching events (threshold rules). */
  hits: Record<string, Hit[]>;
  /** detector \0 subject → its incident while the correlation window lasts. */
  open: Record<string, Correlated>;
  /** jobId → submitting key id (bounded, oldest dropped first). */
  jobs: Record<string, string>;
  /** agentId → [bucket start, count in bucket, moving average per bucket, buckets seen]. */
  rates: Record<string, [number, number, number, number]>;
  /** Submitting key id → its recent submission times (rules with `minJobShare`). */
  submits?: Record<string, number[]>;
  /** How many entries `jobs` holds (bounding it without listing its keys per event). */
  nJobs?: number;
}

export const emptyState = (): EngineState => ({ v: 1, hits: {}, open: {}, jobs: {}, rates: {} });

const MAX_GROUPS = 20_000;
const MAX_JOBS = 50_000;
const MAX_INDEXES = 256;
/** Identities that are Sigil itself, never a subject to isolate or to baseline. */
const SYSTEM = new Set(["system", "sigil", "anonymous", "incident-response", "gateway", "unknown"]);

const rank = (s: Severity) => SEVERITIES.indexOf(s);
const max = (a: Severity, b: Severity): Severity => (rank(a) >= rank(b) ? a : b);

function matches(m: EventMatch, e: DetectEvent): boolean {
  if (m.eventType !== e.eventType) return false;
  for (const [k, vs] of Object.entries(m.details ?? {})) {
    const v = e.details[k];
    if (!vs.some((x) => x === v)) return false;
  }
  for (const [k, vs] of Object.entries(m.except ?? {})) {
    const v = e.details[k];
    if (vs.some((x) => x === v)) return false;
  }
  return true;
}

// A name the trail gives us is only used if it is a bounded, well-formed string (a lone surrogate
// would not survive the JSON of the incident record).
const str = (v: unknown): string | undefined =>
  typeof v === "string" && v.length > 0 && v.length <= 512 && v.isWellFormed() ? v : undefined;

export class DetectionEngine {
  readonly #s: EngineSettings;
  readonly #newId: () => string;
  readonly #rules: readonly Rule[];

  constructor(settings: EngineSettings, newId: () => string, rules: readonly Rule[] = RULES) {
    this.#s = settings;
    this.#newId = newId;
    this.#rules = rules.filter((r) => !r.gate || settings.sandboxEscapeDetection);
  }

  #n(k: IncidentNumber): number {
    return this.#s.incidents[k];
  }

  /** Feeds events (in index order) through the rules; mutates `state`, returns the findings. */
  step(state: EngineState, events: readonly DetectEvent[]): Finding[] {
    const out: Finding[] = [];
    for (const e of events) {
      const t = Date.parse(e.timestamp);
      if (!Number.isFinite(t)) continue;
      if (e.eventType === "job.submitted") this.#rememberJob(state, e, t);
      for (const rule of this.#rules) {
        if (rule.kind === "anomaly") continue;
        if (!rule.match.some((m) => matches(m, e))) continue;
        const who = this.#subject(state, rule.subject, e);
        if (!who) continue;
        const group = `${rule.id}\u0000${who.kind}:${who.id}`;
        let severity: Severity | undefined;
        let indexes: number[] = [e.index];
        if (rule.kind === "single") severity = rule.severity;
        else {
          const win = this.#n(rule.window) * 1000;
          const weight = rule.weightField ? Number(e.details[rule.weightField] ?? 1) : 1;
          const hits = (state.hits[group] ?? []).filter((h) => h.t > t - win);
          hits.push({ t, w: Number.isSafeInteger(weight) && weight > 0 ? weight : 1, i: e.index });
          if (hits.length > MAX_INDEXES) hits.splice(0, hits.length - MAX_INDEXES);
          state.hits[group] = hits;
          const total = hits.reduce((a, h) => a + h.w, 0);
          // "Repeatedly killed" is relative to the subject's own work: a busy agent whose few jobs
          // out of many run out of memory is not probing the sandbox.
          const share =
            rule.minJobShare !== undefined && who.kind === "key"
              ? this.#share(state, who.id, total, t, win)
              : 1;
          if (total >= this.#n(rule.threshold) && share >= (rule.minJobShare ?? 0)) {
            severity = rule.severity;
            if (rule.unknownSeverity && !who.known) severity = rule.unknownSeverity;
            if (rule.escalate && total >= this.#n(rule.escalate.at))
              severity = max(severity, rule.escalate.severity);
            indexes = hits.map((h) => h.i);
          }
        }
        if (severity) {
          const f = this.#correlate(state, rule, group, who, severity, indexes, e, t);
          if (f) out.push(f);
        }
      }
      const anomaly = this.#rules.find((r) => r.kind === "anomaly");
      if (anomaly) {
        const f = this.#rate(state, anomaly, e, t);
        if (f) out.push(f);
      }
    }
    this.#bound(state, events.length > 0 ? Date.parse(events.at(-1)!.timestamp) : 0);
    return out;
  }

  #subject(
    state: EngineState,
    src: SubjectSource,
    e: DetectEvent,
  ): { kind: SubjectKind; id: string; known: boolean } | undefined {
    switch (src.from) {
      case "agentId":
        return SYSTEM.has(e.agentId) ? undefined : { kind: src.as, id: e.agentId, known: true };
      case "details": {
        const v = str(e.details[src.field]);
        return v ? { kind: src.as, id: v, known: true } : undefined;
      }
      case "constant":
        return { kind: "subject", id: src.value, known: true };
      case "auth-source": {
        // functions/app.ts: `key:<kid>` or `address:<ip>`; a key id Sigil could not find is not
        // a known key (its owner cannot be isolated; the source is still worth an alert).
        const source = str(e.details.source);
        if (!source) return undefined;
        if (source.startsWith("key:")) {
          const known = e.details.code !== "key-unknown";
          return { kind: "key", id: source.slice(4), known };
        }
        return { kind: "subject", id: source, known: false };
      }
      case "job-submitter": {
        const job = str(e.details.jobId);
        const kid = job ? state.jobs[job] : undefined;
        if (kid) return { kind: "key", id: kid, known: true };
        return SYSTEM.has(e.agentId) ||
          e.eventType === "job.completed" ||
          e.eventType === "job.failed"
          ? undefined
          : { kind: "key", id: e.agentId, known: true };
      }
    }
  }

  #rememberJob(state: EngineState, e: DetectEvent, t: number): void {
    const job = str(e.details.jobId);
    if (!job || SYSTEM.has(e.agentId)) return;
    if (!(job in state.jobs)) state.nJobs = (state.nJobs ?? Object.keys(state.jobs).length) + 1;
    state.jobs[job] = e.agentId;
    if ((state.nJobs ?? 0) > MAX_JOBS) {
      const keys = Object.keys(state.jobs);
      for (const k of keys.slice(0, keys.length - MAX_JOBS / 2)) delete state.jobs[k];
      state.nJobs = Object.keys(state.jobs).length;
    }
    state.submits ??= {};
    const times = state.submits[e.agentId] ?? [];
    state.submits[e.agentId] = times;
    times.push(t);
    if (times.length > MAX_INDEXES) times.splice(0, times.length - MAX_INDEXES);
  }

  /** The share of a key's jobs submitted within the window that the signals stand for. */
  #share(state: EngineState, kid: string, signals: number, t: number, win: number): number {
    const submitted = (state.submits?.[kid] ?? []).filter((x) => x > t - win).length;
    return signals / Math.max(signals, submitted);
  }

  #correlate(
    state: EngineState,
    rule: Rule,
    group: string,
    who: { kind: SubjectKind; id: string },
    severity: Severity,
    indexes: number[],
    e: DetectEvent,
    t: number,
  ): Finding | undefined {
    const until = t + this.#s.incidents.correlation_window_s * 1000;
    const cur = state.open[group];
    const base = {
      detector: rule.id,
      category: rule.category,
      subject: { kind: who.kind, id: who.id },
      jobs: str(e.details.jobId) ? [String(e.details.jobId)] : [],
      eventIndexes: indexes,
      at: e.timestamp,
    };
    if (cur && cur.until > t) {
      cur.until = until;
      // De-duplication: only an escalation is news; repeats extend the window silently.
      if (rank(severity) <= rank(cur.severity)) return undefined;
      cur.severity = severity;
      return { kind: "join", incidentId: cur.id, severity, ...base };
    }
    const id = this.#newId();
    state.open[group] = { id, until, severity };
    return { kind: "open", incidentId: id, severity, ...base };
  }

  #rate(state: EngineState, rule: Rule, e: DetectEvent, t: number): Finding | undefined {
    if (SYSTEM.has(e.agentId) || e.eventType.startsWith("incident.")) return undefined;
    const bucketMs = this.#s.incidents.anomaly_bucket_s * 1000;
    const bucket = Math.floor(t / bucketMs) * bucketMs;
    let r = state.rates[e.agentId];
    if (!r) r = state.rates[e.agentId] = [bucket, 0, 0, 0];
    if (r[0] !== bucket) {
      // Close the finished bucket (and the empty ones since) into the moving average.
      const gaps = Math.min(Math.max(0, Math.floor((bucket - r[0]) / bucketMs) - 1), 60);
      let avg = r[2];
      avg = r[3] === 0 ? r[1] : avg * 0.8 + r[1] * 0.2;
      for (let g = 0; g < gaps; g++) avg *= 0.8;
      r[0] = bucket;
      r[1] = 0;
      r[2] = avg;
      r[3] += 1;
    }
    r[1] += 1;
    const floor = Math.max(
      this.#s.incidents.anomaly_min_events,
      this.#s.incidents.anomaly_factor * r[2],
    );
    // Exactly at the crossing, once per bucket.
    if (r[1] !== Math.ceil(floor)) return undefined;
    const group = `${rule.id}\u0000key:${e.agentId}`;
    return this.#correlate(
      state,
      rule,
      group,
      { kind: "key", id: e.agentId },
      rule.severity,
      [e.index],
      e,
      t,
    );
  }

  /** Forgets what no window can need any more, and bounds the state's size. */
  #bound(state: EngineState, now: number): void {
    const longest =
      1000 *
      Math.max(
        this.#s.incidents.failed_auth_window_s,
        this.#s.incidents.policy_violation_window_s,
        this.#s.incidents.sandbox_signal_window_s,
      );
    for (const [k, hits] of Object.entries(state.hits))
      if (hits.length === 0 || hits.at(-1)!.t <= now - longest) delete state.hits[k];
    for (const [k, c] of Object.entries(state.open)) if (c.until <= now) delete state.open[k];
    const staleRate = now - 60 * this.#s.incidents.anomaly_bucket_s * 1000;
    for (const [k, r] of Object.entries(state.rates)) if (r[0] < staleRate) delete state.rates[k];
    for (const m of [state.hits, state.rates] as Record<string, unknown>[]) {
      const keys = Object.keys(m);
      if (keys.length > MAX_GROUPS)
        for (const k of keys.slice(0, keys.length - MAX_GROUPS)) delete m[k];
    }
  }
}

/** The rule a finding came from (for its response settings). */
export function ruleOf(detector: string, rules: readonly Rule[] = RULES): Rule | undefined {
  return rules.find((r) => r.id === detector);
}
