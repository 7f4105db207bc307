// The audit trail as an admin (or auditor) exports it (GET /v1/audit/export, NDJSON), as events,
// for tests that count what was audited.
import type { Sigil } from "../../sdk";

export interface TrailEvent {
  eventType: string;
  details: Record<string, unknown>;
}

/** Every event of the exported trail, in order (the export's checkpoint line left out). */
export async function trailEvents(client: Sigil): Promise<TrailEvent[]> {
  return (await client.audit.export())
    .split("\n")
    .filter((l) => l.includes('"eventType"'))
    .map((l) => JSON.parse(l) as TrailEvent);
}
