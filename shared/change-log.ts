// The change feed of an in-memory store (approvals, incidents: docs/governance.md "Approvals",
// docs/incidents.md), the memory counterpart of functions/edge/change-log.ts and
// functions/node/stores/change-log-redis.ts. The store appends in the same synchronous step as
// the write it records; the cursor is a sequence number that is never reused, so it still orders
// after all earlier ones once the oldest are dropped.
export class MemoryChangeLog {
  readonly #changes: { seq: number; id: string }[] = [];
  #seq = 0;
  readonly #keep: number;

  /** `keep`: the newest changes kept (the port's MAX_*_CHANGES); older ones are dropped. */
  constructor(keep: number) {
    this.#keep = keep;
  }

  append(id: string): void {
    this.#changes.push({ seq: ++this.#seq, id });
    if (this.#changes.length > this.#keep) this.#changes.shift();
  }

  /** At most `limit` changes after the sequence number `after`, oldest first. */
  after(after: number, limit: number): { cursor: string; id: string }[] {
    return this.#changes
      .filter((c) => c.seq > after)
      .slice(0, limit)
      .map((c) => ({ cursor: String(c.seq), id: c.id }));
  }

  /** The newest change's cursor ("0" before the first). */
  cursor(): string {
    return String(this.#seq);
  }
}
