// Compliance reports over a synthetic period with known facts (docs/compliance.md): a policy change
// without approval, a revoked key that kept working (an injected fault), a high incident mitigated
// late and retention shorter than HIPAA's six years. Each framework flags exactly the controls
// those facts break and passes the rest; the signed report verifies offline, and a tampered
// report, a cited event changed in storage or a rewritten log fail verification.
import { describe, expect, it } from "vitest";
import { MemoryAuditLog, sweepRetention, verifyExport } from "../../shared/audit";
import {
  type ComplianceFacts,
  type ComplianceReport,
  FrameworkError,
  frameworkRegistry,
  generateReport,
  PeriodSchema,
  parseFramework,
  renderReportHtml,
  SHIPPED_FRAMEWORKS,
  verifyReport,
} from "../../shared/compliance";
import { seedOf, webcryptoSigner } from "../audit/support/crypto";
import { serviceOver } from "../audit/support/harness";

const H = 3600_000;
const T0 = Date.parse("2026-03-01T00:00:00.000Z");

async function synthetic() {
  let clock = T0 - 48 * H;
  const signer = await webcryptoSigner(seedOf(7), "audit-1");
  const log = new MemoryAuditLog({ signer, now: () => clock });
  const { service, verify, keys } = serviceOver(log, signer);
  const at = async (
    ms: number,
    eventType: string,
    agentId: string,
    details: Record<string, unknown>,
  ) => {
    clock = ms;
    return (await service.append({ eventType, agentId, details })).index;
  };
  // Before the period: not counted (an unapproved change here must not be flagged).
  await at(T0 - 47 * H, "policy.updated", "alice", { name: "old" });
  const idx = { unapproved: 0, revoked: 0, used: 0, opened: 0, mitigated: 0 };
  await at(T0 + 1 * H, "key.created", "alice", { kid: "k-admin", subject: "alice", role: "admin" });
  await at(T0 + 1 * H, "key.created", "alice", { kid: "k-aud", subject: "bob", role: "auditor" });
  await at(T0 + 2 * H, "policy.updated", "alice", {
    name: "p1",
    reason: "ticket 12",
    approvalId: "ap-1",
    approvedBy: "bob",
  });
  idx.unapproved = await at(T0 + 3 * H, "policy.updated", "alice", {
    name: "p2",
    reason: "hotfix",
  });
  await at(T0 + 4 * H, "job.submitted", "k-agent", { jobId: "j1" });
  idx.revoked = await at(T0 + 5 * H, "key.revoked", "alice", {
    kid: "k-agent",
    at: new Date(T0 + 5 * H).toISOString(),
  });
  // The injected fault: the revoked key's request still succeeded.
  idx.used = await at(T0 + 6 * H, "policy.decision", "agent-1", {
    kid: "k-agent",
    decision: "allow",
  });
  // Refused requests and events that merely mention the key do not count.
  await at(T0 + 6 * H, "auth.failed", "agent-1", { kid: "k-agent" });
  await at(T0 + 6 * H, "key.registered", "alice", { kid: "k-agent" });
  idx.opened = await at(T0 + 7 * H, "incident.opened", "system", {
    incidentId: "inc-1",
    severity: "high",
    openedAt: new Date(T0 + 7 * H).toISOString(),
  });
  await at(T0 + 8 * H, "incident.opened", "system", {
    incidentId: "inc-2",
    severity: "critical",
    openedAt: new Date(T0 + 8 * H).toISOString(),
  });
  await at(T0 + 9 * H, "incident.mitigated", "system", { incidentId: "inc-2" });
  await at(T0 + 9 * H, "incident.opened", "system", {
    incidentId: "inc-3",
    severity: "low",
    openedAt: new Date(T0 + 9 * H).toISOString(),
  });
  for (let i = 0; i < 20; i++)
    await at(T0 + 10 * H, "tool.invoked", `agent-${i % 3}`, { tool: "search" });
  idx.mitigated = await at(T0 + 87 * H, "incident.mitigated", "system", { incidentId: "inc-1" });
  // After the period.
  await at(T0 + 200 * H, "policy.updated", "alice", { name: "later" });
  const period = { from: new Date(T0).toISOString(), to: new Date(T0 + 100 * H).toISOString() };
  const facts: ComplianceFacts = {
    retentionDays: 365,
    retentionEnforced: true,
    encryptionAtRest: true,
  };
  return {
    log,
    service,
    verify,
    keys,
    signer,
    idx,
    period,
    facts,
    setClock: (ms: number) => (clock = ms),
  };
}

const statuses = (r: ComplianceReport) =>
  Object.fromEntries(r.controls.map((c) => [c.id, c.status]));

describe("compliance reports over a synthetic period", () => {
  it("each framework flags exactly the controls the known facts break", async () => {
    const s = await synthetic();
    const reg = frameworkRegistry();
    const run = (id: string) =>
      generateReport({
        audit: s.service,
        framework: reg.get(id)!,
        period: s.period,
        facts: s.facts,
        signer: s.signer,
      });
    const hipaa = await run("hipaa");
    expect(statuses(hipaa)).toEqual({
      "access-logging": "met",
      "access-control": "not_met",
      "breach-detection": "not_met",
      retention: "not_met",
      integrity: "met",
      encryption: "met",
    });
    expect(statuses(await run("gdpr"))).toEqual({
      "processing-records": "met",
      "access-control": "not_met",
      "breach-notification": "not_met",
      integrity: "met",
      encryption: "met",
      "personal-data": "met",
    });
    const sox = await run("sox");
    expect(statuses(sox)).toEqual({
      "change-management": "not_met",
      "segregation-of-duties": "met",
      "access-control": "not_met",
      "audit-trail": "met",
      retention: "not_met",
    });
    // The findings cite the events that break the control, with proofs.
    const cm = sox.controls.find((c) => c.id === "change-management")!;
    expect(cm.evidence.eventIndexes).toEqual([s.idx.unapproved]);
    const ac = hipaa.controls.find((c) => c.id === "access-control")!;
    expect(ac.evidence.eventIndexes).toEqual([s.idx.revoked, s.idx.used]);
    const bd = hipaa.controls.find((c) => c.id === "breach-detection")!;
    expect(bd.evidence.eventIndexes).toEqual([s.idx.opened, s.idx.mitigated]);
    expect(hipaa.score).toBe(50);
    for (const r of [hipaa, sox]) {
      const check = await verifyReport(JSON.parse(JSON.stringify(r)), {
        publicKey: s.signer.publicKey,
        verify: s.verify,
      });
      expect(check).toEqual({ valid: true, errors: [] });
    }
    const html = renderReportHtml(hipaa);
    expect(html).toContain("Not met");
    expect(html).not.toMatch(/<script|https?:\/\//);
  });

  it("a tampered report, a wrong key and a forged proof fail verification", async () => {
    const s = await synthetic();
    const framework = frameworkRegistry().get("hipaa")!;
    const r = await generateReport({
      audit: s.service,
      framework,
      period: s.period,
      facts: s.facts,
      signer: s.signer,
    });
    const opts = { publicKey: s.signer.publicKey, verify: s.verify };
    const flipped = structuredClone(r);
    flipped.controls[1]!.status = "met";
    expect((await verifyReport(flipped, opts)).errors).toContain(
      "report signature does not verify",
    );
    const other = await webcryptoSigner(seedOf(9), "other");
    expect((await verifyReport(r, { ...opts, publicKey: other.publicKey })).valid).toBe(false);
    // Re-signing a forged proof with the right key still fails: the proof does not reach the root.
    const forged = structuredClone(r);
    const { signature: _s, kid: _k, ...unsigned } = forged;
    unsigned.evidence[0]!.proof[0] = unsigned.evidence[0]!.proof[0]!.replace(/^./, (c) =>
      c === "A" ? "B" : "A",
    );
    const { canonicalBytes, toBase64Url } = await import("../../shared/encoding");
    const resigned = {
      ...unsigned,
      kid: "audit-1",
      signature: toBase64Url(await s.signer.sign(canonicalBytes(unsigned))),
    };
    const res = await verifyReport(resigned, opts);
    expect(res.valid).toBe(false);
    expect(res.errors.join("\n")).toMatch(/not in the log at the checkpoint/);
    expect((await verifyReport({ ...r, controls: "x" }, opts)).valid).toBe(false);
  });

  it("a cited event changed in storage is flagged and fails verification", async () => {
    const s = await synthetic();
    s.log.tamper(s.idx.used, (rec) => ({ json: rec!.json.replace('"allow"', '"deny"') }));
    const framework = frameworkRegistry().get("hipaa")!;
    const r = await generateReport({
      audit: s.service,
      framework,
      period: s.period,
      facts: s.facts,
      signer: s.signer,
    });
    expect(statuses(r).integrity).toBe("not_met");
    const check = await verifyReport(r, { publicKey: s.signer.publicKey, verify: s.verify });
    expect(check.valid).toBe(false);
    expect(check.errors.join("\n")).toMatch(new RegExp(`evidence ${s.idx.used}: not in the log`));
  });

  it("a newer checkpoint shows the log was extended, not rewritten", async () => {
    const s = await synthetic();
    const framework = frameworkRegistry().get("gdpr")!;
    const r = await generateReport({
      audit: s.service,
      framework,
      period: s.period,
      facts: s.facts,
      signer: s.signer,
    });
    s.setClock(T0 + 300 * H);
    await s.service.append({ eventType: "app.note", agentId: "agent-1", details: {} });
    const newer = await s.service.checkpoint();
    const cons = await s.service.consistencyProof(r.checkpoint.treeSize, newer.treeSize);
    const opts = { publicKey: s.signer.publicKey, verify: s.verify };
    expect(
      await verifyReport(r, { ...opts, newer: { note: newer.checkpoint, proof: cons.proof } }),
    ).toEqual({ valid: true, errors: [] });
    const bad = [...cons.proof];
    bad[0] = bad[0]!.replace(/^./, (c) => (c === "A" ? "B" : "A"));
    expect(
      (await verifyReport(r, { ...opts, newer: { note: newer.checkpoint, proof: bad } })).valid,
    ).toBe(false);
  });

  it("the revoked-key check is not applicable when no event names its acting key", async () => {
    const signer = await webcryptoSigner(seedOf(7), "audit-1");
    const log = new MemoryAuditLog({ signer, now: () => T0 + H });
    const { service } = serviceOver(log, signer);
    // An event that mentions a key without naming it as the one that acted.
    await service.append({ eventType: "key.registered", agentId: "a", details: { kid: "k1" } });
    const r = await generateReport({
      audit: service,
      framework: frameworkRegistry().get("gdpr")!,
      period: { from: new Date(T0).toISOString(), to: new Date(T0 + 2 * H).toISOString() },
      facts: { retentionDays: 3000, retentionEnforced: true, encryptionAtRest: false },
      signer,
    });
    expect(statuses(r)["access-control"]).toBe("not_applicable");
    expect(statuses(r).encryption).toBe("not_met");
  });
});

describe("frameworks are validated data", () => {
  it("ships hipaa, gdpr and sox", () => {
    expect(SHIPPED_FRAMEWORKS.map((f) => f.id)).toEqual(["hipaa", "gdpr", "sox"]);
  });

  it("loads a custom framework from TOML", () => {
    const f = parseFramework(
      `id = "acme"\nname = "ACME policy"\nversion = "2.1"\n[[controls]]\nid = "trail"\nreference = "ACME-7"\ntitle = "Trail verifies"\ncheck = { kind = "chain-verifies" }\n`,
      "acme.toml",
    );
    expect(frameworkRegistry([f]).get("acme")!.controls[0]!.check.kind).toBe("chain-verifies");
    expect(() => frameworkRegistry([{ ...f, id: "hipaa" }])).toThrow(/defined twice/);
  });

  it.each([
    ["not json", "{", /not valid JSON/],
    [
      "unknown check",
      JSON.stringify({
        id: "x",
        name: "X",
        version: "1.0",
        controls: [{ id: "a", reference: "r", title: "t", check: { kind: "vibes" } }],
      }),
      /kind/,
    ],
    [
      "duplicate control",
      JSON.stringify({
        id: "x",
        name: "X",
        version: "1.0",
        controls: [1, 2].map(() => ({
          id: "a",
          reference: "r",
          title: "t",
          check: { kind: "chain-verifies" },
        })),
      }),
      /duplicate a/,
    ],
    [
      "lone surrogate",
      JSON.stringify({
        id: "x",
        name: "X\ud800",
        version: "1.0",
        controls: [{ id: "a", reference: "r", title: "t", check: { kind: "chain-verifies" } }],
      }),
      /well-formed/,
    ],
    [
      "extra member",
      JSON.stringify({
        id: "x",
        name: "X",
        version: "1.0",
        extra: 1,
        controls: [{ id: "a", reference: "r", title: "t", check: { kind: "chain-verifies" } }],
      }),
      /extra/,
    ],
  ])("refuses %s with a clear error", (_name, text, msg) => {
    expect(() => parseFramework(text, "custom.json")).toThrow(FrameworkError);
    expect(() => parseFramework(text, "custom.json")).toThrow(msg);
  });

  it("refuses reversed and enormous periods", () => {
    expect(
      PeriodSchema.safeParse({ from: "2026-01-02T00:00:00.000Z", to: "2026-01-01T00:00:00.000Z" })
        .success,
    ).toBe(false);
    expect(
      PeriodSchema.safeParse({ from: "1990-01-01T00:00:00.000Z", to: "2026-01-01T00:00:00.000Z" })
        .success,
    ).toBe(false);
    expect(
      PeriodSchema.safeParse({ from: "2025-01-01T00:00:00.000Z", to: "2026-01-01T00:00:00.000Z" })
        .success,
    ).toBe(true);
  });
});

describe("reports across a retention prune", () => {
  it("after a prune the remainder verifies from the anchor, and pre-prune proofs still hold", async () => {
    const s = await synthetic();
    const hipaa = frameworkRegistry().get("hipaa")!;
    const before = await generateReport({
      audit: s.service,
      framework: hipaa,
      period: s.period,
      facts: s.facts,
      signer: s.signer,
    });
    // One day of retention seen from T0 + 1 day: the event before the period is archived and pruned.
    const archived: string[] = [];
    const swept = await sweepRetention(1, {
      audit: s.service,
      now: () => T0 + 24 * H,
      archive: async (lines) => {
        for await (const l of lines) archived.push(l);
      },
    });
    expect(swept).toMatchObject({ outcome: "retained", from: 0, to: 1 });
    expect((await s.service.log.head()).start).toBe(1);
    expect((await verifyExport(archived, { keys: s.keys, verify: s.verify })).valid).toBe(true);
    expect(await s.service.verify()).toMatchObject({ valid: true });
    const opts = { publicKey: s.signer.publicKey, verify: s.verify };
    // The log after the prune extends the report's checkpoint: the prune rewrote nothing.
    const newer = await s.service.checkpoint();
    const cons = await s.service.consistencyProof(before.checkpoint.treeSize, newer.treeSize);
    expect(
      await verifyReport(before, { ...opts, newer: { note: newer.checkpoint, proof: cons.proof } }),
    ).toEqual({ valid: true, errors: [] });
    // Inclusion proofs for kept events, against the checkpoint issued before the prune.
    for (const x of before.evidence) {
      const p = await s.service.inclusionProof(x.index, before.checkpoint.treeSize);
      expect(p.proof).toEqual(x.proof);
      expect(p.rootHash).toBe(before.checkpoint.rootHash);
    }
    // A report over the same period after the prune: same verdicts, verifies from the anchor.
    const after = await generateReport({
      audit: s.service,
      framework: hipaa,
      period: s.period,
      facts: s.facts,
      signer: s.signer,
    });
    expect(statuses(after)).toEqual(statuses(before));
    expect(await verifyReport(after, opts)).toEqual({ valid: true, errors: [] });
  });
});
