// QuarantineStore in one process's memory: tests, tools, single-process deployments. Beyond
// `maxEntries` records placing fails closed (an error the caller sees), never drops a record.
import { checkList, liftedRecord, type QuarantineStore } from "./ports";
import { isActive, parseRecord, QuarantineRecordSchema, targetKey } from "./record";
import type { QuarantineRecord, QuarantineTarget } from "./types";

export class MemoryQuarantineStore implements QuarantineStore {
  /** JSON, like the other adapters: a caller never holds a live reference to stored state. */
  readonly #records = new Map<string, string>();
  readonly #active = new Map<string, string>();
  readonly #max: number;

  constructor(opts: { maxEntries?: number } = {}) {
    this.#max = opts.maxEntries ?? 100_000;
  }

  async place(record: QuarantineRecord): Promise<{ placed: boolean; record: QuarantineRecord }> {
    const valid = QuarantineRecordSchema.parse(record);
    if (!isActive(valid)) throw new RangeError("quarantine store: a new record must be active");
    const key = targetKey(valid.target);
    const cur = this.#active.get(key);
    if (cur !== undefined) return { placed: false, record: parseRecord(this.#records.get(cur)!) };
    if (this.#records.has(valid.id)) throw new RangeError(`quarantine ${valid.id} exists`);
    if (this.#records.size >= this.#max) throw new Error("quarantine store is full");
    const json = JSON.stringify(valid);
    this.#records.set(valid.id, json);
    this.#active.set(key, valid.id);
    return { placed: true, record: parseRecord(json) };
  }

  async lift(id: string, lift: { by: string; at: string; reason: string }) {
    const json = this.#records.get(id);
    if (json === undefined) return undefined;
    const r = parseRecord(json);
    if (!isActive(r)) return { lifted: false, record: r };
    const next = JSON.stringify(QuarantineRecordSchema.parse(liftedRecord(r, lift)));
    this.#records.set(id, next);
    this.#active.delete(targetKey(r.target));
    return { lifted: true, record: parseRecord(next) };
  }

  async get(id: string): Promise<QuarantineRecord | undefined> {
    const json = this.#records.get(id);
    return json === undefined ? undefined : parseRecord(json);
  }

  async active(target: QuarantineTarget): Promise<QuarantineRecord | undefined> {
    const id = this.#active.get(targetKey(target));
    return id === undefined ? undefined : this.get(id);
  }

  async list(opts: { limit: number; before?: string }): Promise<QuarantineRecord[]> {
    checkList(opts);
    return [...this.#records.keys()]
      .filter((id) => opts.before === undefined || id < opts.before)
      .sort()
      .reverse()
      .slice(0, opts.limit)
      .map((id) => parseRecord(this.#records.get(id)!));
  }
}
