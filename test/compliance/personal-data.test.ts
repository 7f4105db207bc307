// The `personal-data-sealed` check (docs/compliance.md "Checks", docs/data-subjects.md): a client
// event that names its data subject in the clear breaks the gdpr framework's erasure control;
// sealed and erased subjects, Sigil's own events and events naming no subject do not.
import { describe, expect, it } from "vitest";
import type { AuditEvent } from "../../shared/audit";
import { frameworkRegistry, startCheck } from "../../shared/compliance";
import { MemorySubjectKeyStore, SubjectVault } from "../../shared/subjects";

const check = frameworkRegistry()
  .get("gdpr")!
  .controls.find((c) => c.id === "personal-data")!.check;
const facts = { retentionDays: 2555, retentionEnforced: true, encryptionAtRest: true };
const ctx = {
  facts,
  period: { from: "2026-01-01T00:00:00.000Z", to: "2026-12-31T00:00:00.000Z" },
  chain: { valid: true, checked: 0 },
};

const event = (index: number, eventType: string, details: Record<string, unknown>) =>
  ({ index, eventType, details }) as Pick<AuditEvent, "index" | "eventType" | "details">;

async function run(events: ReturnType<typeof event>[]) {
  const c = startCheck(check, facts);
  for (const e of events) c.see(e as AuditEvent);
  return c.finish(ctx);
}

describe("personal-data-sealed", () => {
  it("is in the shipped gdpr framework", () => {
    expect(check.kind).toBe("personal-data-sealed");
  });

  it("met when every client event's subject is sealed or erased", async () => {
    const vault = new SubjectVault({ store: new MemorySubjectKeyStore(), secret: "s" });
    const sealed = await vault.seal({ subject: "alice", action: "login" });
    await vault.erase("bob");
    const erased = await vault.seal({ subject: "bob" });
    const out = await run([
      event(0, "app.login", sealed),
      event(1, "tool.invoked", erased),
      event(2, "key.created", { subject: "agent-1", role: "agent" }),
      event(3, "app.ping", {}),
    ]);
    expect(out).toMatchObject({ status: "met", count: 2, findings: [] });
  });

  it("not met, citing the event, when a client event names its subject in the clear", async () => {
    const out = await run([
      event(0, "app.login", { subject: "alice" }),
      event(1, "agent.created", { subject: 7 }),
      event(2, "key.created", { subject: "agent-1" }),
    ]);
    expect(out.status).toBe("not_met");
    expect(out.cited).toEqual([0, 1]);
    expect(out.findings[0]).toContain("in the clear");
  });
});
