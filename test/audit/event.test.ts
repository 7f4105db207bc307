// Event encoding: the per-member canonical fast path equals RFC 8785 on the whole object, and the
// fast structural check accepts and rejects exactly what AuditEventSchema does.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type AuditEvent,
  AuditEventSchema,
  checkEvent,
  computeEventHash,
  eventJson,
  eventParts,
  HASHED_FIELDS,
  MemoryAuditLog,
} from "../../shared/audit";
import { canonicalJson, sha256Hex } from "../../shared/encoding";
import { seedOf, webcryptoSigner } from "./support/crypto";

describe("audit event encoding", () => {
  it("assembled canonical JSON equals canonicalize() of the object, for any strings and details", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.jsonValue(), (s, d) => {
        const e = {
          chain: "default",
          index: 7,
          eventId: "01890a5d-ac96-774b-bcce-b302099a8057",
          timestamp: "2024-01-01T00:00:00.000Z",
          agentId: s,
          eventType: "tool.invoked",
          details: { d },
          previousHash: "0".repeat(64),
          eventHash: "1".repeat(64),
          kid: s,
          signature: "A".repeat(86),
        };
        const parts = eventParts(e);
        expect(eventJson(parts)).toBe(canonicalJson(e));
        const hashed = Object.fromEntries(HASHED_FIELDS.map((f) => [f, e[f]]));
        expect(computeEventHash(parts)).toBe(sha256Hex(canonicalJson(hashed)));
      }),
      { numRuns: 300 },
    );
  });

  it("checkEvent agrees with AuditEventSchema on real and mutated events", async () => {
    const log = new MemoryAuditLog({ signer: await webcryptoSigner(seedOf(2)) });
    const e = await log.append({
      eventType: "key.rotated",
      agentId: "admin",
      details: { a: [1, "x"] },
    });
    expect("event" in checkEvent(JSON.parse(JSON.stringify(e)))).toBe(true);
    const mutations: Partial<Record<keyof AuditEvent, unknown>>[] = [
      { index: -1 },
      { index: 1.5 },
      { eventId: e.eventId.toUpperCase() },
      { eventId: "01890a5d-ac96-474b-bcce-b302099a8057" },
      { timestamp: "2024-02-30T00:00:00.000Z" },
      { timestamp: "2024-01-01T00:00:00Z" },
      { agentId: "" },
      { eventType: "Tool" },
      { details: [] },
      { details: null },
      { previousHash: "g".repeat(64) },
      { eventHash: "0".repeat(63) },
      { kid: "" },
      { signature: `${"A".repeat(85)}B` },
      { chain: "bad chain" },
    ];
    for (const m of mutations) {
      const v = { ...e, ...m };
      expect("issue" in checkEvent(v), JSON.stringify(m)).toBe(true);
      expect(AuditEventSchema.safeParse(v).success, JSON.stringify(m)).toBe(false);
    }
    expect("issue" in checkEvent({ ...e, extra: 1 })).toBe(true);
    expect(AuditEventSchema.safeParse({ ...e, extra: 1 }).success).toBe(false);
  });
});
