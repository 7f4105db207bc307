// One bad append must fail only itself (issue 15, item 1): an input the sequencer cannot
// canonicalise (a lone surrogate anywhere) is refused on arrival, before it joins a batch, so the
// appends it would have been sealed with are all stored. Run against every AuditLogPort adapter.
import { afterAll, describe, expect, it } from "vitest";
import { type AuditAppendInput, AuditError } from "../../shared/audit";
import { durableObjectHarness } from "../edge/support/audit-harness";
import { type Harness, memoryHarness, redisHarness, serviceFor } from "./support/harness";

/** Inputs canonicalisation refuses, each in another place an agent controls. */
const POISONS: [string, AuditAppendInput][] = [
  ["a lone high surrogate in a details value", { eventType: "app.x", details: { s: "\ud800" } }],
  ["a lone low surrogate in a details key", { eventType: "app.x", details: { "k\udc00": 1 } }],
  [
    "a reversed pair deep in details",
    { eventType: "app.x", details: { a: [{ b: ["ok", "\udc00\ud800"] }] } },
  ],
  ["a lone surrogate in agentId", { eventType: "app.x", agentId: "agent-\ud83d", details: {} }],
];

const N = 40;

const harnesses: Harness[] = [
  memoryHarness(),
  redisHarness("hostile-append"),
  durableObjectHarness(),
];
afterAll(async () => {
  for (const h of harnesses) await h.cleanup();
});

for (const h of harnesses) {
  describe(`one bad append fails alone: ${h.name}`, () => {
    it.each(POISONS)(
      "%s, interleaved with concurrent good appends: every good one is stored",
      async (_what, poison) => {
        const { log, service } = await serviceFor(h);
        // Something in flight first, so the rest queue up behind it and share the next batch.
        const lead = log.append({ eventType: "app.lead", details: {} });
        const calls = Array.from({ length: N + 1 }, (_, i) =>
          i === N / 2
            ? log.append(poison)
            : log.append({ eventType: "app.good", agentId: `a-${i}`, details: { i, s: "é😀" } }),
        );
        const [first, ...rest] = await Promise.allSettled([lead, ...calls]);
        expect(first.status).toBe("fulfilled");
        const good = rest.filter((_, i) => i !== N / 2);
        expect(good.filter((r) => r.status === "rejected")).toEqual([]);
        const bad = rest[N / 2]!;
        expect(bad.status).toBe("rejected");
        const reason = (bad as PromiseRejectedResult).reason as AuditError;
        expect(reason).toBeInstanceOf(AuditError);
        expect(reason.code).toBe("invalid-input");
        const head = await log.head();
        expect(head.size).toBe(N + 1);
        expect((await service.verify()).valid).toBe(true);
      },
    );

    it("the same poison through AuditService.append is a clear invalid-input", async () => {
      const { service } = await serviceFor(h);
      for (const [, poison] of POISONS) {
        await expect(service.append(poison)).rejects.toMatchObject({ code: "invalid-input" });
      }
      await expect(service.append({ eventType: "app.ok", details: {} })).resolves.toMatchObject({
        index: 0,
      });
    });
  });
}
