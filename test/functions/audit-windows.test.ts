// AuditWindows, the aggregation behind auth.failed and limit.exceeded: per key, the first
// occurrence is written at once, the rest of the window as one summary with the count; at most
// maxOpen keys per event type, the rest folded into one overflow summary; close() flushes.
import { describe, expect, it } from "vitest";
import type { AuditInput } from "../../functions/audit-sink";
import { AuditWindows, type Occurrence } from "../../functions/audit-windows";

function rig(maxOpen = 64) {
  let t = 1_000_000;
  const written: AuditInput[] = [];
  const w = new AuditWindows({
    windowMs: 1000,
    maxOpen,
    maxIds: 3,
    now: () => t,
    append: async (e) => {
      written.push(e);
    },
  });
  const occ = (key: string, id: string): Occurrence => ({
    key,
    requestId: id,
    first: { eventType: "auth.failed", agentId: "x", details: { key, requestId: id } },
    summary: { eventType: "auth.failed", agentId: "x", details: { key } },
  });
  return { w, written, occ, tick: (ms: number) => (t += ms) };
}
const total = (es: AuditInput[]) =>
  es.reduce((n, e) => n + ((e.details.count as number | undefined) ?? 1), 0);

describe("AuditWindows", () => {
  it("writes the first at once and the rest of the window as one summary with its count", async () => {
    const { w, written, occ, tick } = rig();
    await w.record(occ("a", "r0"));
    expect(written).toHaveLength(1);
    expect(written[0]!.details).toMatchObject({ requestId: "r0", count: 1 });
    for (let i = 1; i < 100; i++) expect(w.record(occ("a", `r${i}`))).toBeUndefined();
    expect(written).toHaveLength(1);
    expect(w.hasDue()).toBe(false);
    tick(1000);
    expect(w.hasDue()).toBe(true);
    await w.flushDue();
    expect(written).toHaveLength(2);
    expect(written[1]!.details).toMatchObject({
      key: "a",
      count: 99,
      requestIds: ["r1", "r2", "r3"],
      aggregated: true,
    });
    // A new window after that: its first occurrence is written at once again.
    await w.record(occ("a", "later"));
    expect(written).toHaveLength(3);
    expect(total(written)).toBe(101);
  });

  it("a window with nothing after its first occurrence writes no summary", async () => {
    const { w, written, occ, tick } = rig();
    await w.record(occ("a", "r0"));
    tick(5000);
    await w.flushDue();
    expect(written).toHaveLength(1);
  });

  it("keys beyond maxOpen fold into one overflow summary per event type", async () => {
    const { w, written, occ, tick } = rig(2);
    await w.record(occ("a", "a0"));
    await w.record(occ("b", "b0"));
    for (let i = 0; i < 50; i++) expect(w.record(occ(`k${i}`, `x${i}`))).toBeUndefined();
    expect(written).toHaveLength(2);
    tick(1000);
    await w.flushDue();
    expect(written).toHaveLength(3);
    expect(written[2]!.details).toMatchObject({ overflow: true, count: 50, sources: 50 });
    expect(total(written)).toBe(52);
  });

  it("close() writes every open window's summary, due or not", async () => {
    const { w, written, occ } = rig();
    await w.record(occ("a", "r0"));
    w.record(occ("a", "r1"));
    w.record(occ("b", "s0"));
    w.record(occ("b", "s1"));
    await w.close();
    expect(total(written)).toBe(4);
    expect(written).toHaveLength(4);
  });

  it("a first occurrence that cannot be written fails its request and the next one retries", async () => {
    let fail = true;
    const written: AuditInput[] = [];
    const w = new AuditWindows({
      windowMs: 1000,
      append: async (e) => {
        if (fail) throw new Error("audit down");
        written.push(e);
      },
    });
    const o = (id: string): Occurrence => ({
      key: "a",
      requestId: id,
      first: { eventType: "auth.failed", agentId: "x", details: {} },
      summary: { eventType: "auth.failed", agentId: "x", details: {} },
    });
    await expect(w.record(o("r0"))).rejects.toThrow(/audit down/);
    fail = false;
    await w.record(o("r1"));
    expect(written).toHaveLength(1);
  });
});
