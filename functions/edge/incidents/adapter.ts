// IncidentStore over IncidentsObject (one object for the deployment). Records are schema-checked
// before they leave and re-validated when they come back: a corrupt row is an error.
import {
  checkAdvance,
  checkChanges,
  checkList,
  type DetectionCheckpoint,
  type Emergency,
  encodeIncident,
  type Incident,
  type IncidentChange,
  type IncidentStore,
  MAX_EVIDENCE_CHARS,
  parseEmergency,
  parseIncident,
  type StoredIncident,
} from "../../../shared/incidents";
import { readChangeCursor, readChanges } from "../change-log";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { IncidentRow, IncidentsObject } from "./object";

function decode(row: IncidentRow): StoredIncident {
  const record = parseIncident(row.value);
  if (record.incidentId !== row.id)
    throw new Error(`incident store: row ${row.id} holds another id`);
  return { rev: row.rev, record };
}

export class DoIncidentStore implements IncidentStore {
  constructor(private readonly object: StubSource<IncidentsObject>) {}

  async detection(): Promise<DetectionCheckpoint> {
    return unwrap(await this.object().detection());
  }

  async advance(
    expected: number,
    next: DetectionCheckpoint,
    opened: readonly Incident[],
    updated: readonly StoredIncident[] = [],
  ): Promise<boolean> {
    checkAdvance(expected, next);
    const rows = opened.map((r): [string, string] => [r.incidentId, encodeIncident(r)]);
    const swaps = updated.map((u): [string, number, string] => {
      if (!Number.isSafeInteger(u.rev) || u.rev < 1)
        throw new RangeError("incident store: bad revision");
      return [u.record.incidentId, u.rev, encodeIncident(u.record)];
    });
    return unwrap(await this.object().advance(expected, next.cursor, next.state, rows, swaps));
  }

  async get(id: string): Promise<StoredIncident | undefined> {
    const row = unwrap(await this.object().get(id));
    return row ? decode(row) : undefined;
  }

  async swap(id: string, rev: number, next: Incident): Promise<boolean> {
    if (next.incidentId !== id)
      throw new RangeError("incident store: a record cannot change its id");
    return unwrap(await this.object().swap(id, rev, encodeIncident(next)));
  }

  async list(opts: { limit: number; before?: string }): Promise<StoredIncident[]> {
    checkList(opts);
    return unwrap(await this.object().list(opts.limit, opts.before ?? null)).map(decode);
  }

  async changes(after: string, limit: number): Promise<IncidentChange[]> {
    checkChanges(after, limit);
    return readChanges(this.object(), after, limit, "incident store");
  }

  async changeCursor(): Promise<string> {
    return readChangeCursor(this.object());
  }

  async putEvidence(id: string, bundle: string): Promise<boolean> {
    if (bundle.length > MAX_EVIDENCE_CHARS)
      throw new RangeError("incident store: evidence too large");
    return unwrap(await this.object().putEvidence(id, bundle));
  }

  async evidence(id: string): Promise<string | undefined> {
    return unwrap(await this.object().evidence(id)) ?? undefined;
  }

  async emergency(): Promise<{ rev: number; value: Emergency | undefined }> {
    const row = unwrap(await this.object().emergency());
    return row ? { rev: row.rev, value: parseEmergency(row.value) } : { rev: 0, value: undefined };
  }

  async swapEmergency(rev: number, next: Emergency): Promise<boolean> {
    const json = JSON.stringify(next);
    parseEmergency(json);
    return unwrap(await this.object().swapEmergency(rev, json));
  }
}
