// The approvals port (docs/governance.md "Approvals"). Records are replaced only by compare-and-set
// on a revision, so of two concurrent answers (or redemptions) exactly one wins, on every adapter:
// memory, Redis (Lua) and a Durable Object (one synchronous SQL transaction).
import type { ApprovalRecord } from "./record";

export interface StoredApproval {
  /** Increases by one on every replacement; what `swap` compares. */
  rev: number;
  record: ApprovalRecord;
}

export type CreateResult = { created: true } | { created: false; current: string };

export interface ApprovalStore {
  /**
   * Stores a new record (revision 1) and points its binding at it, if the binding still points at
   * `replacing` (null: at nothing). Otherwise stores nothing and names the id it points at, so two
   * identical requests at once share one approval.
   */
  create(record: ApprovalRecord, replacing: string | null): Promise<CreateResult>;
  /** The id the binding points at, if any. */
  byBinding(binding: string): Promise<string | undefined>;
  get(id: string): Promise<StoredApproval | undefined>;
  /** Replaces the record if its revision is still `rev`; false when another writer got there first. */
  swap(id: string, rev: number, next: ApprovalRecord): Promise<boolean>;
  /**
   * In descending id order, which is newest first to the millisecond (ids are UUIDv7): at most
   * `limit` records with an id below `before`, so pages neither repeat nor skip a record.
   */
  list(opts: { limit: number; before?: string }): Promise<StoredApproval[]>;
  /**
   * The change feed (server-sent events): every create and swap appends the record's id under a
   * cursor that orders after all earlier ones, in the same atomic step. At most `limit` changes
   * after `after` (an opaque cursor from this store), oldest first. The feed keeps the newest
   * MAX_APPROVAL_CHANGES; older ones are dropped.
   */
  changes(after: string, limit: number): Promise<ApprovalChange[]>;
  /** The cursor of the newest change ("0" before the first): where a new reader starts. */
  changeCursor(): Promise<string>;
}

export interface ApprovalChange {
  cursor: string;
  id: string;
}

/** Changes each adapter keeps (the oldest beyond it are dropped). */
export const MAX_APPROVAL_CHANGES = 10_000;

/** Upper bound of `list`'s limit on every adapter. */
export const MAX_APPROVAL_PAGE = 1000;

export function checkSwap(id: string, rev: number, next: ApprovalRecord): void {
  if (next.id !== id) throw new RangeError("approval store: a record cannot change its id");
  if (!Number.isSafeInteger(rev) || rev < 1) throw new RangeError("approval store: bad revision");
}

/** A change cursor: decimal digits, or a Redis stream id (`ms-seq`). */
export function checkChanges(after: string, limit: number): void {
  if (!/^\d{1,20}(-\d{1,20})?$/.test(after)) throw new RangeError("approval store: bad cursor");
  checkList({ limit });
}

export function checkList(opts: { limit: number }): void {
  if (!Number.isInteger(opts.limit) || opts.limit < 1 || opts.limit > MAX_APPROVAL_PAGE) {
    throw new RangeError(`approval store: limit must be 1..${MAX_APPROVAL_PAGE}`);
  }
}
