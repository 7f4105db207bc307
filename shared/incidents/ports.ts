// The incidents port (docs/incidents.md). One store holds the detection checkpoint (the audit
// cursor and the engine state, advanced together by compare-and-set: that is what makes detection
// exactly-once across API processes), the incident records (replaced by compare-and-set on a
// revision), their immutable evidence bundles, emergency mode, and a change feed for server-sent
// events. Adapters: memory, Redis (Lua), Durable Object (one SQL transaction per call).
import { z } from "zod";
import { type Incident, IncidentSchema } from "./record";

export interface StoredIncident {
  rev: number;
  record: Incident;
}

export interface DetectionCheckpoint {
  /** The next audit index to read. */
  cursor: number;
  /** The engine state's JSON ("" before the first step). */
  state: string;
}

export const EmergencySchema = z.object({
  active: z.boolean(),
  incidentId: z.string().max(64).nullable(),
  scope: z.enum(["jobs", "all"]),
  since: z.string().max(64),
  by: z.string().max(256),
  reason: z.string().max(4096).nullable(),
});
export type Emergency = z.infer<typeof EmergencySchema>;

export interface IncidentChange {
  cursor: string;
  id: string;
}

export interface IncidentStore {
  detection(): Promise<DetectionCheckpoint>;
  /**
   * If the stored cursor is still `expected` and every `updated` record still has its revision,
   * stores `next`, creates `opened` (each revision 1) and replaces `updated` (revision + 1), all
   * at once; else changes nothing and returns false (another process got there first).
   */
  advance(
    expected: number,
    next: DetectionCheckpoint,
    opened: readonly Incident[],
    updated?: readonly StoredIncident[],
  ): Promise<boolean>;
  get(id: string): Promise<StoredIncident | undefined>;
  /** Replaces the record if its revision is still `rev`. */
  swap(id: string, rev: number, next: Incident): Promise<boolean>;
  /** Newest first (ids are UUIDv7): at most `limit` records with an id below `before`. */
  list(opts: { limit: number; before?: string }): Promise<StoredIncident[]>;
  /** Changes after `after` (a cursor from this store), oldest first; every create and swap adds one. */
  changes(after: string, limit: number): Promise<IncidentChange[]>;
  changeCursor(): Promise<string>;
  /** Stores the evidence bundle once; false (and unchanged) if one is already stored. */
  putEvidence(id: string, bundle: string): Promise<boolean>;
  evidence(id: string): Promise<string | undefined>;
  /** Emergency mode with its revision (0: never set). */
  emergency(): Promise<{ rev: number; value: Emergency | undefined }>;
  swapEmergency(rev: number, next: Emergency): Promise<boolean>;
}

export const MAX_INCIDENT_PAGE = 1000;
export const MAX_INCIDENT_CHANGES = 10_000;
/** Bound on a stored bundle (the window is bounded; this is a backstop). */
export const MAX_EVIDENCE_CHARS = 8 * 1024 * 1024;

export function checkList(opts: { limit: number }): void {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_INCIDENT_PAGE)
    throw new RangeError(`incident store: limit must be 1..${MAX_INCIDENT_PAGE}`);
}

export function checkChanges(after: string, limit: number): void {
  if (!/^\d{1,20}(-\d{1,20})?$/.test(after)) throw new RangeError("incident store: bad cursor");
  checkList({ limit });
}

export function checkAdvance(expected: number, next: DetectionCheckpoint): void {
  if (!Number.isSafeInteger(expected) || expected < 0 || !Number.isSafeInteger(next.cursor))
    throw new RangeError("incident store: bad cursor");
  if (next.cursor < expected) throw new RangeError("incident store: the cursor only moves forward");
}

/** Parses what an adapter read back: storage is not trusted to be well-formed. */
export const parseIncident = (json: string): Incident => IncidentSchema.parse(JSON.parse(json));
export const encodeIncident = (r: Incident): string => JSON.stringify(IncidentSchema.parse(r));
export const parseEmergency = (json: string): Emergency => EmergencySchema.parse(JSON.parse(json));
