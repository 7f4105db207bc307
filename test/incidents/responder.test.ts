// The automatic response (shared/incidents/responder.ts) over a real audit trail and the memory
// incident store: what each severity does, that a second responder racing the first applies
// nothing twice, that `policy_violation_action` caps the response, the evidence bundle verifying
// offline (and failing once tampered), emergency mode and its audited admin override.
import { describe, expect, it } from "vitest";
import type { AuditService } from "../../shared/audit";
import { configSchema } from "../../shared/config";
import { uuidV7 } from "../../shared/crypto";
import {
  DetectionEngine,
  DetectionRunner,
  EmergencyOverrideError,
  emergencyRefuses,
  type IncidentStore,
  MemoryIncidentStore,
  overrideEmergency,
  Responder,
  type ViolationAction,
  verifyEvidence,
} from "../../shared/incidents";
import type { Isolation, PlaceQuarantine, QuarantineRecord } from "../../shared/quarantine/types";
import { memoryHarness, serviceFor } from "../audit/support/harness";

const incidents = configSchema.parse({}).incidents;

/** A real, idempotent in-memory Isolation: one record per target while in force. */
class RecordingIsolation implements Isolation {
  readonly placed: QuarantineRecord[] = [];
  calls = 0;
  async place(input: PlaceQuarantine): Promise<QuarantineRecord> {
    this.calls++;
    const same = this.placed.find((q) => JSON.stringify(q.target) === JSON.stringify(input.target));
    if (same) return same;
    const q: QuarantineRecord = {
      id: uuidV7(),
      target: input.target,
      reason: input.reason,
      incidentId: input.incidentId,
      placedBy: input.by,
      placedAt: new Date().toISOString(),
    };
    this.placed.push(q);
    return q;
  }
}

interface World {
  service: AuditService;
  store: IncidentStore;
  isolation: RecordingIsolation;
  revoked: string[];
  published: { channel: string; body: Record<string, unknown> }[];
  runner(action?: ViolationAction): DetectionRunner;
  keys: Parameters<typeof verifyEvidence>[1]["keys"];
  verify: Parameters<typeof verifyEvidence>[1]["verify"];
  serviceKey: Uint8Array;
}

async function world(): Promise<World> {
  const { service, keys, verify, signer } = await serviceFor(memoryHarness());
  const store = new MemoryIncidentStore();
  const isolation = new RecordingIsolation();
  const revoked: string[] = [];
  const published: World["published"] = [];
  const w: World = {
    service,
    store,
    isolation,
    revoked,
    published,
    keys,
    verify,
    serviceKey: signer.publicKey,
    runner(action: ViolationAction = "block") {
      const responder = new Responder({
        store,
        evidence: service,
        signer,
        isolation,
        revoke: async (kid) => {
          if (!revoked.includes(kid)) revoked.push(kid);
        },
        publish: (channel, body) => published.push({ channel, body }),
        policyViolationAction: action,
        emergencyScope: "jobs",
      });
      const engine = new DetectionEngine({ incidents, sandboxEscapeDetection: true }, uuidV7);
      const runner: DetectionRunner = new DetectionRunner({
        store,
        audit: service,
        engine,
        batch: 100,
        onChange: async (s) => {
          if (await responder.respond(s.record.incidentId))
            await runner.finish(s.record.incidentId);
        },
      });
      return runner;
    },
  };
  return w;
}

const replay = (kid: string) => ({
  eventType: "auth.failed",
  agentId: kid,
  details: { code: "replay", detail: "nonce already used", source: `key:${kid}` },
});

async function trail(service: AuditService) {
  const page = await service.list(0, 1000);
  return page.events;
}

describe("responder", () => {
  it("high (replay): quarantines and revokes the key, stores evidence that verifies offline, mitigated and audited", async () => {
    const w = await world();
    for (let i = 0; i < 4; i++)
      await w.service.append({ eventType: "tool.invoked", agentId: "a", details: { i } });
    await w.service.append(replay("kid-evil"));
    await w.runner().drain();
    const [s] = await w.store.list({ limit: 10 });
    expect(s!.record.state).toBe("mitigated");
    expect(w.isolation.placed.map((q) => q.target)).toEqual([{ kind: "key", kid: "kid-evil" }]);
    expect(w.isolation.placed[0]!.incidentId).toBe(s!.record.incidentId);
    expect(w.revoked).toEqual(["kid-evil"]);
    expect(w.published.map((p) => p.channel)).toEqual(["alert"]);
    const bundle = await w.store.evidence(s!.record.incidentId);
    expect(bundle).toBeDefined();
    expect(s!.record.evidence.bundle?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const report = await verifyEvidence(bundle!, {
      keys: w.keys,
      verify: w.verify,
      serviceKey: w.serviceKey,
    });
    expect(report).toMatchObject({ valid: true });
    // Tampered: one event of the export changed.
    const b = JSON.parse(bundle!) as { export: string };
    const forged = JSON.stringify({
      ...JSON.parse(bundle!),
      export: b.export.replace("kid-evil", "kid-good"),
    });
    expect(
      (await verifyEvidence(forged, { keys: w.keys, verify: w.verify, serviceKey: w.serviceKey }))
        .valid,
    ).toBe(false);
    // Signed by another key: refused.
    expect(
      (
        await verifyEvidence(bundle!, {
          keys: w.keys,
          verify: w.verify,
          serviceKey: new Uint8Array(32).fill(1),
        })
      ).valid,
    ).toBe(false);
    const types = (await trail(w.service))
      .map((e) => e.eventType)
      .filter((t) => t.startsWith("incident."));
    expect(types).toEqual(["incident.opened", "incident.mitigated"]);
    const mitigated = (await trail(w.service)).find((e) => e.eventType === "incident.mitigated")!;
    expect((mitigated.details.actions as { action: string }[]).map((a) => a.action).sort()).toEqual(
      ["alert", "evidence", "quarantine", "revoke"],
    );
  });

  it("two processes responding at once: each mitigation applied once", async () => {
    const w = await world();
    for (let i = 0; i < 6; i++) await w.service.append(replay(`kid-${i}`));
    const a = w.runner();
    const b = w.runner();
    await Promise.all([a.drain(), b.drain()]);
    await Promise.all([a.sweep(), b.sweep()]);
    expect(w.isolation.placed).toHaveLength(6);
    expect(w.revoked.sort()).toEqual(["kid-0", "kid-1", "kid-2", "kid-3", "kid-4", "kid-5"]);
    expect(w.published.filter((p) => p.channel === "alert")).toHaveLength(6);
    const ev = (await trail(w.service)).filter((e) => e.eventType.startsWith("incident."));
    expect(ev.filter((e) => e.eventType === "incident.opened")).toHaveLength(6);
    expect(ev.filter((e) => e.eventType === "incident.mitigated")).toHaveLength(6);
    for (const s of await w.store.list({ limit: 10 }))
      expect(s.record.actions.filter((x) => x.action === "evidence")).toHaveLength(1);
  });

  it.each([
    ["log", 0, 0],
    ["alert", 1, 0],
    ["block", 1, 1],
  ] as const)(
    "policy_violation_action=%s caps a policy burst at high",
    async (action, alerts, isolated) => {
      const w = await world();
      for (let i = 0; i < incidents.policy_violation_high_threshold; i++)
        await w.service.append({
          eventType: "policy.violation",
          agentId: "agent-p",
          details: { decision: "deny" },
        });
      await w.runner(action).drain();
      const [s] = await w.store.list({ limit: 10 });
      expect(s!.record).toMatchObject({ severity: "high", detector: "policy-violation-burst" });
      expect(w.published.filter((p) => p.channel === "alert").length).toBeGreaterThanOrEqual(
        alerts,
      );
      if (alerts === 0) expect(w.published).toEqual([]);
      expect(w.isolation.placed).toHaveLength(isolated);
      if (isolated)
        expect(w.isolation.placed[0]!.target).toEqual({ kind: "subject", subject: "agent-p" });
    },
  );

  it("critical (audit tampered): emergency mode refuses job submissions; the override is audited, only when enabled", async () => {
    const { service, tamper, signer } = await serviceFor(memoryHarness());
    const store = new MemoryIncidentStore();
    const published: string[] = [];
    const responder = new Responder({
      store,
      evidence: service,
      signer,
      publish: (channel) => published.push(channel),
      policyViolationAction: "block",
      emergencyScope: "jobs",
    });
    const engine = new DetectionEngine({ incidents, sandboxEscapeDetection: true }, uuidV7);
    const runner: DetectionRunner = new DetectionRunner({
      store,
      audit: service,
      engine,
      batch: 100,
      onChange: async (s) => {
        if (await responder.respond(s.record.incidentId)) await runner.finish(s.record.incidentId);
      },
    });
    for (let i = 0; i < 5; i++)
      await service.append({ eventType: "tool.invoked", agentId: "a", details: { i } });
    await tamper(2, (r) => (r ? { ...r, json: r.json.replace('"i":2', '"i":9') } : r));
    await runner.drain();
    const [s] = await store.list({ limit: 10 });
    expect(s!.record).toMatchObject({
      severity: "critical",
      detector: "audit-integrity",
      state: "mitigated",
    });
    expect(published.sort()).toEqual(["alert", "emergency"]);
    const e = (await store.emergency()).value;
    expect(e).toMatchObject({ active: true, scope: "jobs", incidentId: s!.record.incidentId });
    expect(emergencyRefuses(e, { roles: ["agent"], jobSubmission: true })).toBe(true);
    expect(emergencyRefuses(e, { roles: ["admin"], jobSubmission: true })).toBe(true);
    expect(emergencyRefuses(e, { roles: ["agent"], jobSubmission: false })).toBe(false);
    expect(
      emergencyRefuses({ ...e!, scope: "all" }, { roles: ["agent"], jobSubmission: false }),
    ).toBe(true);
    expect(
      emergencyRefuses({ ...e!, scope: "all" }, { roles: ["auditor"], jobSubmission: false }),
    ).toBe(false);
    await expect(
      overrideEmergency({ store, audit: service, enabled: false }, "boss", "fixed"),
    ).rejects.toThrow(EmergencyOverrideError);
    expect((await store.emergency()).value?.active).toBe(true);
    const lifted = await overrideEmergency(
      { store, audit: service, enabled: true },
      "boss",
      "restored from backup",
    );
    expect(lifted).toMatchObject({ active: false, by: "boss", reason: "restored from backup" });
    expect(emergencyRefuses(lifted, { roles: ["agent"], jobSubmission: true })).toBe(false);
    const page = await service.list(0, 1000);
    expect(
      page.events.filter((x) => x.eventType === "incident.updated").at(-1)!.details,
    ).toMatchObject({
      change: "emergency_override",
      by: "boss",
      reason: "restored from backup",
    });
    // Lifting twice is refused (nothing to lift), and the runner does not re-enter emergency mode
    // for the incident it already handled.
    await expect(
      overrideEmergency({ store, audit: service, enabled: true }, "boss", "again"),
    ).rejects.toThrow(EmergencyOverrideError);
    await runner.drain();
    await runner.sweep();
    expect((await store.emergency()).value?.active).toBe(false);
  });
});
