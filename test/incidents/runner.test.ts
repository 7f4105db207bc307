// Detection over a real audit trail (memory and Redis logs): findings become incidents with their
// audit events, exactly once across concurrent runners sharing one store, resumed after a
// "restart" without skipping or repeating, and an event tampered in the store is a critical
// audit-integrity incident.
import { afterAll, describe, expect, it } from "vitest";
import type { AuditService } from "../../shared/audit";
import { configSchema } from "../../shared/config";
import { uuidV7 } from "../../shared/crypto";
import {
  DetectionEngine,
  DetectionRunner,
  type IncidentStore,
  moveIncident,
} from "../../shared/incidents";
import { type Harness, memoryHarness, redisHarness, serviceFor } from "../audit/support/harness";
import { incidentStores } from "./support";

const incidents = configSchema.parse({}).incidents;
const harnesses: Harness[] = [memoryHarness(), redisHarness("incidents-runner")];
const stores = incidentStores("runner");

afterAll(async () => {
  for (const h of harnesses) await h.cleanup();
  await stores.cleanup();
});

function runner(audit: AuditService, store: IncidentStore, batch = 50): DetectionRunner {
  const engine = new DetectionEngine({ incidents, sandboxEscapeDetection: true }, uuidV7);
  return new DetectionRunner({ store, audit, engine, batch });
}

const replay = (kid: string) => ({
  eventType: "auth.failed",
  agentId: kid,
  details: { code: "replay", detail: "nonce already used", source: `key:${kid}` },
});
const noise = (i: number) => ({
  eventType: "tool.invoked",
  agentId: `agent-${i % 7}`,
  details: { i },
});

async function incidentEvents(audit: AuditService) {
  const out = [];
  let from: number | null = 0;
  while (from !== null) {
    const page = await audit.list(from, 1000);
    out.push(...page.events.filter((e) => e.eventType.startsWith("incident.")));
    from = page.next;
  }
  return out;
}

describe.each(harnesses)("detection over a $name audit trail", (h) => {
  describe.each(stores.adapters)("incident store: %s", (_s, makeStore) => {
    it("a replay opens one high incident about the key, audited once", async () => {
      const { service } = await serviceFor(h);
      const store = await makeStore();
      for (let i = 0; i < 5; i++) await service.append(noise(i));
      await service.append(replay("kid-r"));
      await service.append(replay("kid-r"));
      await runner(service, store).drain();
      const all = await store.list({ limit: 10 });
      expect(all).toHaveLength(1);
      expect(all[0]!.record).toMatchObject({
        severity: "high",
        detector: "replay",
        keys: ["kid-r"],
        state: "open",
      });
      const ev = await incidentEvents(service);
      expect(ev.map((e) => e.eventType)).toEqual(["incident.opened"]);
      expect(ev[0]!.details).toMatchObject({ incidentId: all[0]!.record.incidentId });
      // The runner's own events are read by the next step and open nothing.
      await runner(service, store).drain();
      expect(await store.list({ limit: 10 })).toHaveLength(1);
    });

    it("two runners racing over one store: each event detected once", async () => {
      const { service } = await serviceFor(h);
      const store = await makeStore();
      for (let i = 0; i < 120; i++)
        await service.append(i % 10 === 3 ? replay(`kid-${i}`) : noise(i));
      const a = runner(service, store, 7);
      const b = runner(service, store, 11);
      await Promise.all([a.drain(), b.drain(), a.drain()]);
      const all = await store.list({ limit: 100 });
      expect(all.map((s) => s.record.keys[0]).sort()).toEqual(
        Array.from({ length: 12 }, (_, k) => `kid-${k * 10 + 3}`).sort(),
      );
      const opened = (await incidentEvents(service)).filter(
        (e) => e.eventType === "incident.opened",
      );
      expect(opened).toHaveLength(12);
      expect((await store.detection()).cursor).toBeGreaterThanOrEqual(120);
    });

    it("a restart mid-trail neither skips nor repeats (a fresh runner resumes at the stored cursor)", async () => {
      const { service } = await serviceFor(h);
      const store = await makeStore();
      const n = incidents.failed_auth_threshold;
      // A burst split across the restart still counts as one burst.
      for (let i = 0; i < n; i++)
        await service.append({
          eventType: "auth.failed",
          agentId: "kid-b",
          details: { code: "signature-invalid", source: "key:kid-b" },
        });
      const first = runner(service, store, 5);
      await first.step();
      await first.step();
      expect(await store.list({ limit: 10 })).toHaveLength(0);
      await runner(service, store, 5).drain();
      const all = await store.list({ limit: 10 });
      expect(all).toHaveLength(1);
      expect(all[0]!.record).toMatchObject({ detector: "failed-auth-burst", severity: "high" });
    });

    it("after an admin resolves an incident, the subject's next attack opens a new one", async () => {
      const { service } = await serviceFor(h);
      const store = await makeStore();
      await service.append(replay("kid-again"));
      await runner(service, store).drain();
      const [first] = await store.list({ limit: 10 });
      const at = new Date().toISOString();
      const resolved = moveIncident(first!.record, "resolved", "boss", at, "key rotated");
      expect(await store.swap(first!.record.incidentId, first!.rev, resolved)).toBe(true);
      await service.append(replay("kid-again"));
      await runner(service, store).drain();
      const all = await store.list({ limit: 10 });
      expect(all).toHaveLength(2);
      expect(all.map((s) => s.record.state).sort()).toEqual(["open", "resolved"]);
    });

    it("an event tampered in the store is a critical audit-integrity incident", async () => {
      const { service, tamper } = await serviceFor(h);
      const store = await makeStore();
      for (let i = 0; i < 6; i++) await service.append(noise(i));
      await tamper(3, (r) => (r ? { ...r, json: r.json.replace('"i":3', '"i":4') } : r));
      await runner(service, store).drain();
      const all = await store.list({ limit: 10 });
      expect(all).toHaveLength(1);
      expect(all[0]!.record).toMatchObject({ severity: "critical", detector: "audit-integrity" });
      // The cursor passed the bad event once: later events are still read, nothing repeats.
      await service.append(replay("kid-late"));
      await runner(service, store).drain();
      expect((await store.list({ limit: 10 })).map((s) => s.record.detector).sort()).toEqual([
        "audit-integrity",
        "replay",
      ]);
    });
  });
});
