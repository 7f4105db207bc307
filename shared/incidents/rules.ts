// The detectors of incident response as data (docs/incidents.md "Detection"), versioned like the
// tool-review patterns: the engine (engine.ts) interprets these rules, configuration
// (`[incidents]`) supplies the numbers. Changing a rule means a new RULES_VERSION, which every
// incident records, so an incident can be re-derived from the trail with the rules that opened it.
import type { Severity } from "../audit";

export const RULES_VERSION = "2026-12-05.2";

/** A numeric setting of `[incidents]` a rule reads its threshold or window from. */
export type IncidentNumber =
  | "failed_auth_threshold"
  | "failed_auth_window_s"
  | "policy_violation_threshold"
  | "policy_violation_high_threshold"
  | "policy_violation_window_s"
  | "sandbox_signal_threshold"
  | "sandbox_signal_high_threshold"
  | "sandbox_signal_window_s";

/** One accepted event shape: its type, and details fields that must equal one of the values. */
export interface EventMatch {
  readonly eventType: string;
  readonly details?: Readonly<Record<string, readonly (string | number | boolean)[]>>;
  /** Details fields that must NOT equal any of the values. */
  readonly except?: Readonly<Record<string, readonly (string | number | boolean)[]>>;
}

/**
 * Who an event is about: a details field or the event's agentId, and what that value names (the
 * responder isolates and revokes by kind). `job-submitter` looks the job's submitting key up from
 * the `job.submitted` events the engine has seen.
 */
export type SubjectSource =
  | { readonly from: "agentId"; readonly as: "key" | "subject" }
  | { readonly from: "details"; readonly field: string; readonly as: "key" | "subject" | "worker" }
  | { readonly from: "auth-source" }
  | { readonly from: "job-submitter" }
  | { readonly from: "constant"; readonly value: string };

/** What a high incident of the rule isolates (docs/incidents.md "Response"). */
export type Isolate = "none" | "key" | "worker";

interface RuleBase {
  readonly id: string;
  readonly category: string;
  readonly match: readonly EventMatch[];
  readonly subject: SubjectSource;
  readonly severity: Severity;
  readonly isolate: Isolate;
  /** Revoke the key ids the evidence names (high and above). */
  readonly revoke: boolean;
  /** A boolean setting that must be on for the rule to run. */
  readonly gate?: "sandbox_escape_detection";
  /** `policy_violation_action` caps what the response to this rule may do. */
  readonly actionSetting?: "policy_violation_action";
  readonly description: string;
}

/** One matching event opens (or joins) an incident. */
export interface SingleRule extends RuleBase {
  readonly kind: "single";
}

/** At least `threshold` matching events (weighted by `weightField`) of one subject in `window`. */
export interface ThresholdRule extends RuleBase {
  readonly kind: "threshold";
  readonly threshold: IncidentNumber;
  readonly window: IncidentNumber;
  /** Aggregated events carry how many occurrences they stand for (functions/audit-windows.ts). */
  readonly weightField?: string;
  /** From this count the incident is `escalate.severity`. */
  readonly escalate?: { readonly at: IncidentNumber; readonly severity: Severity };
  /** The incident is `severity` only for a key Sigil knows; for any other source `unknownSeverity`. */
  readonly unknownSeverity?: Severity;
  /** The signals must stand for at least this share of the subject's jobs in the window. */
  readonly minJobShare?: number;
}

/** A subject's events in one bucket far above its own moving average. */
export interface AnomalyRule extends RuleBase {
  readonly kind: "anomaly";
}

export type Rule = SingleRule | ThresholdRule | AnomalyRule;

const jobSignals: EventMatch[] = [
  // Jobs the sandbox killed for memory or a limit (not timeouts: slow code is not an attack).
  { eventType: "job.completed", details: { status: ["oom", "killed"] } },
  { eventType: "job.failed", details: { status: ["oom", "killed"] } },
  // Signals the sandbox and the egress proxy report as security events.
  {
    eventType: "security.event",
    details: {
      category: [
        "sandbox.write_outside_work",
        "sandbox.seccomp_kill",
        "sandbox.pids_exhausted",
        "egress.denied",
      ],
    },
  },
  { eventType: "egress.denied" },
];

export const RULES: readonly Rule[] = [
  {
    id: "failed-auth-burst",
    kind: "threshold",
    category: "authentication",
    description: "a burst of failed authentications from one key id or one source",
    match: [{ eventType: "auth.failed" }],
    subject: { from: "auth-source" },
    threshold: "failed_auth_threshold",
    window: "failed_auth_window_s",
    weightField: "count",
    severity: "high",
    unknownSeverity: "medium",
    isolate: "key",
    revoke: false,
  },
  {
    id: "replay",
    kind: "single",
    category: "authentication",
    description: "a request replayed with a nonce already used, signed by a known key",
    match: [
      { eventType: "auth.failed", details: { code: ["replay"], detail: ["nonce already used"] } },
    ],
    subject: { from: "auth-source" },
    severity: "high",
    isolate: "key",
    revoke: true,
  },
  {
    id: "policy-violation-burst",
    kind: "threshold",
    category: "policy",
    description: "a burst of denied requests by one subject",
    match: [
      { eventType: "policy.violation" },
      { eventType: "security.event", details: { category: ["reserved_attribute"] } },
    ],
    subject: { from: "agentId", as: "subject" },
    threshold: "policy_violation_threshold",
    window: "policy_violation_window_s",
    escalate: { at: "policy_violation_high_threshold", severity: "high" },
    severity: "medium",
    isolate: "key",
    revoke: false,
    actionSetting: "policy_violation_action",
  },
  {
    id: "key-pin-mismatch",
    kind: "single",
    category: "supply-chain",
    description: "a tool provider's key differs from the pinned one",
    match: [
      { eventType: "security.event", details: { category: ["tool.key_pin_mismatch"] } },
      { eventType: "tool.verified", details: { result: ["key_pin_mismatch"] } },
    ],
    subject: { from: "details", field: "domain", as: "subject" },
    severity: "high",
    // The compromised party is the tool provider, not the agent that asked: nothing of ours to
    // isolate; the pin already refuses the key, and the evidence is kept.
    isolate: "none",
    revoke: false,
  },
  {
    id: "forged-job-result",
    kind: "single",
    category: "worker-compromise",
    description: "a job result whose signature or binding fails, or a second different result",
    match: [
      {
        eventType: "security.event",
        details: { category: ["job.result_refused", "job.result_conflict"] },
      },
    ],
    subject: { from: "details", field: "workerKid", as: "worker" },
    severity: "high",
    isolate: "worker",
    revoke: true,
  },
  {
    id: "sandbox-escape-signals",
    kind: "threshold",
    category: "sandbox",
    description: "one subject's jobs repeatedly killed, writing outside /work or denied egress",
    match: jobSignals,
    subject: { from: "job-submitter" },
    threshold: "sandbox_signal_threshold",
    window: "sandbox_signal_window_s",
    escalate: { at: "sandbox_signal_high_threshold", severity: "high" },
    minJobShare: 0.25,
    severity: "medium",
    isolate: "key",
    revoke: false,
    gate: "sandbox_escape_detection",
  },
  {
    id: "audit-integrity",
    kind: "single",
    category: "audit",
    description: "verification found a bad event or an inconsistent checkpoint",
    match: [{ eventType: "security.event", details: { category: ["audit.integrity"] } }],
    subject: { from: "constant", value: "audit-trail" },
    severity: "critical",
    isolate: "none",
    revoke: false,
  },
  {
    id: "resource-anomaly",
    kind: "anomaly",
    category: "resource",
    description: "one subject's event rate far above its own baseline",
    match: [],
    subject: { from: "agentId", as: "key" },
    severity: "medium",
    isolate: "none",
    revoke: false,
  },
];
