// The audit-integrity signal (docs/incidents.md): GET /v1/audit/verify finding an event tampered in
// Redis writes one `security.event` of category `audit.integrity` (critical), however many times
// it is asked, and detection turns it into a critical incident. Before this change the route only
// answered the report and nothing acted on it.
import { afterAll, expect, it } from "vitest";
import { router } from "../../functions/router";
import { auditRoutes } from "../../functions/routes/audit";
import { configSchema } from "../../shared/config";
import { uuidV7 } from "../../shared/crypto";
import { DetectionEngine, emptyState, eventDetector } from "../../shared/incidents";
import { redisHarness, serviceFor } from "../audit/support/harness";

const h = redisHarness("incidents-integrity");
afterAll(() => h.cleanup());

it("a tampered event found by verify is audited once and detected as critical", async () => {
  const { service, tamper } = await serviceFor(h);
  for (let i = 0; i < 5; i++)
    await service.append({ eventType: "tool.invoked", agentId: "a", details: { i } });
  const app = router()
    .use(async (c, next) => {
      c.set("role", "auditor");
      await next();
    })
    .route("/", auditRoutes(service));
  const ok = await app.request("/v1/audit/verify");
  expect(((await ok.json()) as { valid: boolean }).valid).toBe(true);
  await tamper(2, (r) => (r ? { ...r, json: r.json.replace('"i":2', '"i":7') } : r));
  for (let k = 0; k < 3; k++) {
    const res = await app.request("/v1/audit/verify?to=5");
    expect(((await res.json()) as { valid: boolean }).valid).toBe(false);
  }
  const page = await service.list(0, 100);
  const signals = page.events.filter((e) => e.eventType === "security.event");
  expect(signals).toHaveLength(1);
  expect(signals[0]!.details).toMatchObject({
    category: "audit.integrity",
    severity: "critical",
    index: 2,
  });
  const engine = new DetectionEngine(
    { incidents: configSchema.parse({}).incidents, sandboxEscapeDetection: true },
    uuidV7,
  );
  const found = engine.step(emptyState(), signals.map(eventDetector));
  expect(found.map((f) => [f.detector, f.severity])).toEqual([["audit-integrity", "critical"]]);
});
