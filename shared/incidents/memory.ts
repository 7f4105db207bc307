// IncidentStore in one process's memory: for tests and single-process deployments. JSON, like the
// other adapters, so a caller never holds a live reference to stored state.
import { MemoryChangeLog } from "../change-log";
import {
  checkAdvance,
  checkChanges,
  checkList,
  type DetectionCheckpoint,
  type Emergency,
  encodeIncident,
  type IncidentChange,
  type IncidentStore,
  MAX_INCIDENT_CHANGES,
  parseEmergency,
  parseIncident,
  type StoredIncident,
} from "./ports";
import type { Incident } from "./record";

export class MemoryIncidentStore implements IncidentStore {
  #det: DetectionCheckpoint = { cursor: 0, state: "" };
  readonly #records = new Map<string, { rev: number; json: string }>();
  readonly #evidence = new Map<string, string>();
  readonly #changes = new MemoryChangeLog(MAX_INCIDENT_CHANGES);
  #emergency: { rev: number; json: string } | undefined;

  async detection(): Promise<DetectionCheckpoint> {
    return { ...this.#det };
  }

  async advance(
    expected: number,
    next: DetectionCheckpoint,
    opened: readonly Incident[],
    updated: readonly StoredIncident[] = [],
  ): Promise<boolean> {
    checkAdvance(expected, next);
    const rows = opened.map((r) => [r.incidentId, encodeIncident(r)] as const);
    const swaps = updated.map(
      (u) => [u.record.incidentId, u.rev, encodeIncident(u.record)] as const,
    );
    if (this.#det.cursor !== expected) return false;
    for (const [id, rev] of swaps) if (this.#records.get(id)?.rev !== rev) return false;
    for (const [id] of rows)
      if (this.#records.has(id)) throw new RangeError(`incident ${id} exists`);
    this.#det = { cursor: next.cursor, state: next.state };
    for (const [id, json] of rows) {
      this.#records.set(id, { rev: 1, json });
      this.#changes.append(id);
    }
    for (const [id, rev, json] of swaps) {
      this.#records.set(id, { rev: rev + 1, json });
      this.#changes.append(id);
    }
    return true;
  }

  async get(id: string): Promise<StoredIncident | undefined> {
    const e = this.#records.get(id);
    return e ? { rev: e.rev, record: parseIncident(e.json) } : undefined;
  }

  async swap(id: string, rev: number, next: Incident): Promise<boolean> {
    if (next.incidentId !== id)
      throw new RangeError("incident store: a record cannot change its id");
    const json = encodeIncident(next);
    const e = this.#records.get(id);
    if (!e || e.rev !== rev) return false;
    this.#records.set(id, { rev: rev + 1, json });
    this.#changes.append(id);
    return true;
  }

  async list(opts: { limit: number; before?: string }): Promise<StoredIncident[]> {
    checkList(opts);
    return [...this.#records.keys()]
      .filter((id) => opts.before === undefined || id < opts.before)
      .sort()
      .reverse()
      .slice(0, opts.limit)
      .map((id) => {
        const e = this.#records.get(id)!;
        return { rev: e.rev, record: parseIncident(e.json) };
      });
  }

  async changes(after: string, limit: number): Promise<IncidentChange[]> {
    checkChanges(after, limit);
    return this.#changes.after(Number(after), limit);
  }

  async changeCursor(): Promise<string> {
    return this.#changes.cursor();
  }

  async putEvidence(id: string, bundle: string): Promise<boolean> {
    if (this.#evidence.has(id)) return false;
    this.#evidence.set(id, bundle);
    return true;
  }

  async evidence(id: string): Promise<string | undefined> {
    return this.#evidence.get(id);
  }

  async emergency(): Promise<{ rev: number; value: Emergency | undefined }> {
    const e = this.#emergency;
    return e ? { rev: e.rev, value: parseEmergency(e.json) } : { rev: 0, value: undefined };
  }

  async swapEmergency(rev: number, next: Emergency): Promise<boolean> {
    const json = JSON.stringify(next);
    parseEmergency(json);
    if ((this.#emergency?.rev ?? 0) !== rev) return false;
    this.#emergency = { rev: rev + 1, json };
    return true;
  }
}
