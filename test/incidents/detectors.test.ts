// Each detector of shared/incidents/rules.ts: its triggering sequence opens an incident of the
// right severity about the right subject; the same sequence one step short opens none.
// Correlation (a later burst joins the open incident) and de-duplication (repeats are silent).
import { describe, expect, it } from "vitest";
import { configSchema } from "../../shared/config";
import {
  type DetectEvent,
  DetectionEngine,
  type EngineSettings,
  type EngineState,
  emptyState,
  type Finding,
} from "../../shared/incidents";

const incidents = configSchema.parse({}).incidents;
const T0 = Date.parse("2026-12-05T10:00:00.000Z");

function settings(over: Partial<EngineSettings> = {}): EngineSettings {
  return { incidents, sandboxEscapeDetection: true, ...over };
}

function engine(over: Partial<EngineSettings> = {}): DetectionEngine {
  let n = 0;
  return new DetectionEngine(
    settings(over),
    () => `00000000-0000-7000-8000-${String(++n).padStart(12, "0")}`,
  );
}

/** Events at one per `gapMs` from T0 (indexes 0…). */
function seq(
  items: { eventType: string; agentId?: string; details?: Record<string, unknown> }[],
  gapMs = 1000,
): DetectEvent[] {
  return items.map((e, i) => ({
    index: i,
    timestamp: new Date(T0 + i * gapMs).toISOString(),
    eventType: e.eventType,
    agentId: e.agentId ?? "system",
    details: e.details ?? {},
  }));
}

const times = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

function run(events: DetectEvent[], over: Partial<EngineSettings> = {}): Finding[] {
  const e = engine(over);
  const state: EngineState = emptyState();
  return e.step(state, events);
}

const authFail = (kid: string, code = "signature-invalid") => ({
  eventType: "auth.failed",
  agentId: kid,
  details: { code, detail: code === "replay" ? "nonce already used" : "bad", source: `key:${kid}` },
});

interface Case {
  name: string;
  detector: string;
  severity: string;
  subject: { kind: string; id: string };
  trigger: DetectEvent[];
  short: DetectEvent[];
  over?: Partial<EngineSettings>;
}

const jobSubmitted = (kid: string, jobId: string) => ({
  eventType: "job.submitted",
  agentId: kid,
  details: { jobId },
});
const killed = (jobId: string) => ({
  eventType: "job.failed",
  agentId: "worker-kid",
  details: { jobId, status: "oom" },
});

const cases: Case[] = [
  {
    name: "failed authentication burst of a known key",
    detector: "failed-auth-burst",
    severity: "high",
    subject: { kind: "key", id: "kid-a" },
    trigger: seq(times(incidents.failed_auth_threshold, () => authFail("kid-a"))),
    short: seq(times(incidents.failed_auth_threshold - 1, () => authFail("kid-a"))),
  },
  {
    name: "failed authentication burst from an address",
    detector: "failed-auth-burst",
    severity: "medium",
    subject: { kind: "subject", id: "address:203.0.113.9" },
    trigger: seq(
      times(incidents.failed_auth_threshold, () => ({
        eventType: "auth.failed",
        agentId: "anonymous",
        details: { code: "auth-required", source: "address:203.0.113.9" },
      })),
    ),
    short: seq(
      times(incidents.failed_auth_threshold - 1, () => ({
        eventType: "auth.failed",
        agentId: "anonymous",
        details: { code: "auth-required", source: "address:203.0.113.9" },
      })),
    ),
  },
  {
    name: "replay of a known key",
    detector: "replay",
    severity: "high",
    subject: { kind: "key", id: "kid-r" },
    trigger: seq([authFail("kid-r", "replay")]),
    // A stale timestamp is the same code but not a reused nonce.
    short: seq([
      {
        eventType: "auth.failed",
        agentId: "kid-r",
        details: { code: "replay", detail: "stale", source: "key:kid-r" },
      },
    ]),
  },
  {
    name: "policy violation burst",
    detector: "policy-violation-burst",
    severity: "medium",
    subject: { kind: "subject", id: "agent-p" },
    trigger: seq(
      times(incidents.policy_violation_threshold, () => ({
        eventType: "policy.violation",
        agentId: "agent-p",
      })),
    ),
    short: seq(
      times(incidents.policy_violation_threshold - 1, () => ({
        eventType: "policy.violation",
        agentId: "agent-p",
      })),
    ),
  },
  {
    name: "key pin mismatch",
    detector: "key-pin-mismatch",
    severity: "high",
    subject: { kind: "subject", id: "tools.example" },
    trigger: seq([
      {
        eventType: "security.event",
        agentId: "kid-x",
        details: { category: "tool.key_pin_mismatch", domain: "tools.example" },
      },
    ]),
    short: seq([
      {
        eventType: "tool.verified",
        agentId: "kid-x",
        details: { result: "trusted", domain: "tools.example" },
      },
    ]),
  },
  {
    name: "forged job result",
    detector: "forged-job-result",
    severity: "high",
    subject: { kind: "worker", id: "worker-kid" },
    trigger: seq([
      {
        eventType: "security.event",
        agentId: "worker-kid",
        details: {
          category: "job.result_refused",
          workerKid: "worker-kid",
          jobId: "j1",
          reason: "bad-signature",
        },
      },
    ]),
    short: seq([
      {
        eventType: "job.completed",
        agentId: "worker-kid",
        details: { jobId: "j1", status: "succeeded" },
      },
    ]),
  },
  {
    name: "conflicting job result",
    detector: "forged-job-result",
    severity: "high",
    subject: { kind: "worker", id: "worker-kid" },
    trigger: seq([
      {
        eventType: "security.event",
        agentId: "worker-kid",
        details: { category: "job.result_conflict", workerKid: "worker-kid", jobId: "j1" },
      },
    ]),
    short: seq([]),
  },
  {
    name: "sandbox escape signals",
    detector: "sandbox-escape-signals",
    severity: "medium",
    subject: { kind: "key", id: "kid-s" },
    trigger: seq([
      ...times(incidents.sandbox_signal_threshold, (i) => jobSubmitted("kid-s", `j${i}`)),
      ...times(incidents.sandbox_signal_threshold, (i) => killed(`j${i}`)),
    ]),
    short: seq([
      ...times(incidents.sandbox_signal_threshold, (i) => jobSubmitted("kid-s", `j${i}`)),
      ...times(incidents.sandbox_signal_threshold - 1, (i) => killed(`j${i}`)),
    ]),
  },
  {
    name: "audit integrity",
    detector: "audit-integrity",
    severity: "critical",
    subject: { kind: "subject", id: "audit-trail" },
    trigger: seq([
      { eventType: "security.event", details: { category: "audit.integrity", index: 4 } },
    ]),
    short: seq([{ eventType: "security.event", details: { category: "audit.verified" } }]),
  },
  {
    name: "resource anomaly",
    detector: "resource-anomaly",
    severity: "medium",
    subject: { kind: "key", id: "kid-z" },
    // A quiet baseline of 10 events a minute for 10 minutes, then a minute at the floor.
    trigger: seq(
      [
        ...times(100, () => ({ eventType: "tool.invoked", agentId: "kid-z" })),
        ...times(incidents.anomaly_min_events, () => ({
          eventType: "tool.invoked",
          agentId: "kid-z",
        })),
      ],
      0,
    ).map((e, i) => ({
      ...e,
      timestamp: new Date(i < 100 ? T0 + i * 6000 : T0 + 600_000 + (i - 100) * 100).toISOString(),
    })),
    short: seq(
      [
        ...times(100, () => ({ eventType: "tool.invoked", agentId: "kid-z" })),
        ...times(incidents.anomaly_min_events - 1, () => ({
          eventType: "tool.invoked",
          agentId: "kid-z",
        })),
      ],
      0,
    ).map((e, i) => ({
      ...e,
      timestamp: new Date(i < 100 ? T0 + i * 6000 : T0 + 600_000 + (i - 100) * 100).toISOString(),
    })),
  },
];

describe("detectors", () => {
  it.each(cases)("$name: triggers; one step short does not", (c) => {
    const found = run(c.trigger, c.over).filter((f) => f.detector === c.detector);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ kind: "open", severity: c.severity, subject: c.subject });
    expect(run(c.short, c.over).filter((f) => f.detector === c.detector)).toEqual([]);
  });

  it("sandbox escape signals run only with sandbox_escape_detection", () => {
    const c = cases.find((x) => x.detector === "sandbox-escape-signals")!;
    expect(run(c.trigger, { sandboxEscapeDetection: false })).toEqual([]);
  });

  it("sandbox signals of a busy agent's few jobs out of many are not an escape attempt", () => {
    const n = incidents.sandbox_signal_threshold;
    const busy = seq([
      ...times(40, (i) => jobSubmitted("kid-busy", `j${i}`)),
      ...times(n, (i) => killed(`j${i}`)),
    ]);
    expect(run(busy).filter((f) => f.detector === "sandbox-escape-signals")).toEqual([]);
  });

  it("a policy violation burst escalates to high and joins the open incident", () => {
    const n = incidents.policy_violation_high_threshold;
    const found = run(
      seq(
        times(n, () => ({ eventType: "policy.violation", agentId: "agent-p" })),
        100,
      ),
    );
    expect(found.map((f) => [f.kind, f.severity])).toEqual([
      ["open", "medium"],
      ["join", "high"],
    ]);
    expect(found[1]!.incidentId).toBe(found[0]!.incidentId);
  });

  it("repeats within the correlation window are de-duplicated; after it a new incident opens", () => {
    const e = engine();
    const state = emptyState();
    const fail = authFail("kid-r", "replay");
    const first = e.step(state, seq([fail, fail, fail]));
    expect(first).toHaveLength(1);
    const later = new Date(T0 + (incidents.correlation_window_s + 10) * 1000).toISOString();
    const again = e.step(state, [{ ...seq([fail])[0]!, index: 3, timestamp: later }]);
    expect(again).toHaveLength(1);
    expect(again[0]!.kind).toBe("open");
    expect(again[0]!.incidentId).not.toBe(first[0]!.incidentId);
  });

  it("the state survives a JSON round trip: a restart mid-burst neither loses nor repeats", () => {
    const events = seq(times(incidents.failed_auth_threshold + 5, () => authFail("kid-a")));
    const whole = run(events);
    const e = engine();
    let state = emptyState();
    const a = e.step(state, events.slice(0, 7));
    state = JSON.parse(JSON.stringify(state)) as EngineState;
    const b = e.step(state, events.slice(7));
    expect([...a, ...b].map((f) => [f.kind, f.detector, f.severity])).toEqual(
      whole.map((f) => [f.kind, f.detector, f.severity]),
    );
  });

  it("hostile details (huge, wrong types, lone surrogates) never throw nor name a subject", () => {
    const evil = seq([
      {
        eventType: "auth.failed",
        details: {
          source: "key:".padEnd(10_000, "x"),
          code: "replay",
          detail: "nonce already used",
        },
      },
      { eventType: "auth.failed", details: { source: 42, code: "replay" } },
      {
        eventType: "security.event",
        details: { category: "job.result_refused", workerKid: "\ud800" },
      },
      { eventType: "auth.failed", details: { source: "key:a", count: -5 } },
    ]);
    expect(() => run(evil)).not.toThrow();
    expect(
      run(evil).filter((f) => f.subject.id.length > 512 || !f.subject.id.isWellFormed()),
    ).toEqual([]);
  });

  it("an event with an unparseable timestamp is skipped", () => {
    expect(run([{ ...seq([authFail("k", "replay")])[0]!, timestamp: "yesterday" }])).toEqual([]);
  });
});
