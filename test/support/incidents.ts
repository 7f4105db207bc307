// An incident opened straight in the store the API reads, as the detection runner would open it
// (shared/incidents/record.ts openIncident), for tests of the routes, the streams and the CLI.
// Before any schema exists: the routes call `.openapi()` on the incident schemas, which zod only
// has once @hono/zod-openapi has extended it.
import "@hono/zod-openapi";
import { uuidV7 } from "../../shared/crypto";
import { type IncidentStore, openIncident, type Severity } from "../../shared/incidents";

export async function openTestIncident(
  store: IncidentStore,
  opts: { severity?: Severity; subject?: string } = {},
): Promise<string> {
  const incidentId = uuidV7();
  for (let attempt = 0; attempt < 20; attempt++) {
    const d = await store.detection();
    const record = openIncident(
      {
        kind: "open",
        incidentId,
        detector: "test",
        category: "test",
        severity: opts.severity ?? "high",
        subject: { kind: "subject", id: opts.subject ?? "test-subject" },
        jobs: [],
        eventIndexes: [0],
        at: new Date().toISOString(),
      },
      "test",
    );
    if (await store.advance(d.cursor, d, [record])) return incidentId;
  }
  throw new Error("the incident store kept changing");
}
