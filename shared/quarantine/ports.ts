// The quarantine store port (docs/incidents.md "Quarantine"). A target has at most one active
// record; `place` and `lift` each decide in one atomic step on every adapter (memory, Redis Lua,
// a Durable Object's synchronous SQL), so two processes placing at once store one record and two
// lifting at once lift it once.
import type { QuarantineRecord, QuarantineTarget } from "./types";

export interface QuarantineStore {
  /**
   * Stores `record` as its target's active quarantine, unless one is already in force: then it
   * stores nothing and returns that one (`placed: false`).
   */
  place(record: QuarantineRecord): Promise<{ placed: boolean; record: QuarantineRecord }>;
  /**
   * Lifts the record if it is still active (`lifted: true`, the lifted record); a record already
   * lifted is returned unchanged (`lifted: false`); undefined when there is no such record.
   */
  lift(
    id: string,
    lift: { by: string; at: string; reason: string },
  ): Promise<{ lifted: boolean; record: QuarantineRecord } | undefined>;
  get(id: string): Promise<QuarantineRecord | undefined>;
  /** The target's active quarantine, if any. */
  active(target: QuarantineTarget): Promise<QuarantineRecord | undefined>;
  /** Newest first (ids are UUIDv7): at most `limit` records with an id below `before`. */
  list(opts: { limit: number; before?: string }): Promise<QuarantineRecord[]>;
}

/** Upper bound of `list`'s limit on every adapter. */
export const MAX_QUARANTINE_PAGE = 500;

export function checkList(opts: { limit: number; before?: string }): void {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_QUARANTINE_PAGE)
    throw new RangeError(`quarantine store: limit must be 1..${MAX_QUARANTINE_PAGE}`);
  if (opts.before !== undefined && !/^[0-9a-f-]{36}$/.test(opts.before))
    throw new RangeError("quarantine store: bad cursor");
}

/** The lifted record: the only change a record ever sees. */
export function liftedRecord(
  r: QuarantineRecord,
  lift: { by: string; at: string; reason: string },
): QuarantineRecord {
  return { ...r, liftedAt: lift.at, liftedBy: lift.by, liftReason: lift.reason };
}
