// Incident states move forward only (docs/incidents.md "Incidents").
import { describe, expect, it } from "vitest";
import {
  canMove,
  type Finding,
  IncidentTransitionError,
  incidentEventType,
  joinFinding,
  moveIncident,
  openIncident,
  withAction,
} from "../../shared/incidents";

const finding: Finding = {
  kind: "open",
  incidentId: "00000000-0000-7000-8000-000000000001",
  detector: "replay",
  category: "authentication",
  severity: "high",
  subject: { kind: "key", id: "kid-1" },
  jobs: [],
  eventIndexes: [7],
  at: "2026-12-05T12:00:00.000Z",
};

describe("incident record", () => {
  it("open → acknowledged → mitigated → resolved; never back; terminal states stay", () => {
    let r = openIncident(finding, "v1");
    expect(r).toMatchObject({ state: "open", keys: ["kid-1"], evidence: { from: 7, to: 8 } });
    r = moveIncident(r, "acknowledged", "admin", finding.at, "looking");
    r = moveIncident(r, "mitigated", "incident-response", finding.at, null);
    expect(() => moveIncident(r, "acknowledged", "admin", finding.at, null)).toThrow(
      IncidentTransitionError,
    );
    r = moveIncident(r, "resolved", "admin", finding.at, "done");
    expect(canMove(r.state, "false_positive")).toBe(false);
    expect(r.timeline.map((t) => t.change)).toEqual([
      "opened",
      "acknowledged",
      "mitigated",
      "resolved",
    ]);
  });
  it("false_positive from open; joins escalate only upward", () => {
    const r = openIncident({ ...finding, severity: "medium" }, "v1");
    expect(moveIncident(r, "false_positive", "admin", finding.at, "benign").state).toBe(
      "false_positive",
    );
    const j = joinFinding(r, { ...finding, kind: "join", eventIndexes: [9] });
    expect(j.severity).toBe("high");
    expect(j.evidence).toMatchObject({ from: 7, to: 10, eventIndexes: [7, 9] });
    expect(joinFinding(j, { ...finding, severity: "low", eventIndexes: [9] })).toBe(j);
  });
  it("each change maps to its audit event type", () => {
    expect(
      ["opened", "acknowledged", "mitigated", "resolved", "false_positive"].map(incidentEventType),
    ).toEqual([
      "incident.opened",
      "incident.updated",
      "incident.mitigated",
      "incident.resolved",
      "incident.resolved",
    ]);
  });

  it("past 256 actions the oldest failed attempts go first, never a done step or an audit claim", () => {
    let r = openIncident(finding, "v1");
    const act = (action: string, target: string, outcome: "done" | "failed") => ({
      action,
      target,
      at: finding.at,
      by: "incident-response",
      outcome,
      detail: null,
    });
    r = withAction(r, act("audit", "timeline:0", "done"));
    r = withAction(r, act("quarantine", "key:kid-1", "done"));
    for (let i = 0; i < 300; i++) r = withAction(r, act("revoke", `key:k${i}`, "failed"));
    expect(r.actions).toHaveLength(256);
    expect(r.actions.slice(0, 2).map((a) => a.target)).toEqual(["timeline:0", "key:kid-1"]);
    expect(r.actions.at(-1)?.target).toBe("key:k299");
    expect(r.actions[2]?.target).toBe("key:k46");
  });
});
