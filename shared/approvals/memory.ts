// ApprovalStore in one process's memory: for tests, tools and single-process deployments. Records
// past their retention are forgotten as new ones arrive; beyond `maxEntries` live records, creating
// one fails closed (no approval is ever dropped to make room).
import { MemoryChangeLog } from "../change-log";
import {
  type ApprovalChange,
  type ApprovalStore,
  type CreateResult,
  checkChanges,
  checkList,
  checkSwap,
  MAX_APPROVAL_CHANGES,
  type StoredApproval,
} from "./ports";
import { type ApprovalRecord, ApprovalRecordSchema } from "./record";

export class MemoryApprovalStore implements ApprovalStore {
  /** JSON, like the other adapters: a caller never holds a live reference to stored state. */
  readonly #records = new Map<string, { rev: number; json: string }>();
  readonly #bindings = new Map<string, string>();
  readonly #changes = new MemoryChangeLog(MAX_APPROVAL_CHANGES);
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: { maxEntries?: number; now?: () => number } = {}) {
    this.#max = opts.maxEntries ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  #read(id: string): StoredApproval | undefined {
    const e = this.#records.get(id);
    if (!e) return undefined;
    const record = ApprovalRecordSchema.parse(JSON.parse(e.json));
    if (record.retainUntil <= this.#now()) return undefined;
    return { rev: e.rev, record };
  }

  #forgetOld(): void {
    const now = this.#now();
    for (const [id, e] of this.#records) {
      const r = JSON.parse(e.json) as ApprovalRecord;
      if (r.retainUntil <= now) {
        this.#records.delete(id);
        if (this.#bindings.get(r.binding) === id) this.#bindings.delete(r.binding);
      }
    }
  }

  async create(record: ApprovalRecord, replacing: string | null): Promise<CreateResult> {
    const valid = ApprovalRecordSchema.parse(record);
    // The binding's live target; a forgotten one points at nothing.
    const bound = this.#bindings.get(valid.binding);
    const current = bound !== undefined && this.#read(bound) ? bound : null;
    if (current !== null && current !== replacing) return { created: false, current };
    if (this.#records.has(valid.id)) throw new RangeError(`approval ${valid.id} exists`);
    if (this.#records.size >= this.#max) this.#forgetOld();
    if (this.#records.size >= this.#max) throw new Error("approval store is full");
    this.#records.set(valid.id, { rev: 1, json: JSON.stringify(valid) });
    this.#bindings.set(valid.binding, valid.id);
    this.#changes.append(valid.id);
    return { created: true };
  }

  async byBinding(binding: string): Promise<string | undefined> {
    const id = this.#bindings.get(binding);
    return id !== undefined && this.#read(id) ? id : undefined;
  }

  async get(id: string): Promise<StoredApproval | undefined> {
    return this.#read(id);
  }

  async swap(id: string, rev: number, next: ApprovalRecord): Promise<boolean> {
    checkSwap(id, rev, next);
    const valid = ApprovalRecordSchema.parse(next);
    const cur = this.#read(id);
    if (!cur || cur.rev !== rev) return false;
    this.#records.set(id, { rev: rev + 1, json: JSON.stringify(valid) });
    this.#changes.append(id);
    return true;
  }

  async list(opts: { limit: number; before?: string }): Promise<StoredApproval[]> {
    checkList(opts);
    const ids = [...this.#records.keys()]
      .filter((id) => opts.before === undefined || id < opts.before)
      .sort()
      .reverse();
    const out: StoredApproval[] = [];
    for (const id of ids) {
      const r = this.#read(id);
      if (r) out.push(r);
      if (out.length >= opts.limit) break;
    }
    return out;
  }

  async changes(after: string, limit: number): Promise<ApprovalChange[]> {
    checkChanges(after, limit);
    if (after.includes("-")) throw new RangeError("approval store: bad cursor");
    return this.#changes.after(Number(after), limit);
  }

  async changeCursor(): Promise<string> {
    return this.#changes.cursor();
  }
}
