// QuarantineStore over QuarantineObject (one object for the deployment). Records are
// schema-checked before they leave and re-validated when they come back.
import {
  checkList,
  isActive,
  liftedRecord,
  parseRecord,
  type QuarantineRecord,
  QuarantineRecordSchema,
  type QuarantineStore,
  type QuarantineTarget,
  targetKey,
} from "../../../shared/quarantine";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { QuarantineObject } from "./object";

export class DoQuarantineStore implements QuarantineStore {
  constructor(private readonly object: StubSource<QuarantineObject>) {}

  async place(record: QuarantineRecord): Promise<{ placed: boolean; record: QuarantineRecord }> {
    const valid = QuarantineRecordSchema.parse(record);
    if (!isActive(valid)) throw new RangeError("quarantine store: a new record must be active");
    const json = JSON.stringify(valid);
    const cur = unwrap(await this.object().place(valid.id, targetKey(valid.target), json));
    return cur === null
      ? { placed: true, record: parseRecord(json) }
      : { placed: false, record: parseRecord(cur) };
  }

  async lift(id: string, lift: { by: string; at: string; reason: string }) {
    const r = await this.get(id);
    if (!r) return undefined;
    if (!isActive(r)) return { lifted: false, record: r };
    const json = JSON.stringify(QuarantineRecordSchema.parse(liftedRecord(r, lift)));
    if (unwrap(await this.object().lift(id, json)))
      return { lifted: true, record: parseRecord(json) };
    const now = await this.get(id);
    return now ? { lifted: false, record: now } : undefined;
  }

  async get(id: string): Promise<QuarantineRecord | undefined> {
    const v = unwrap(await this.object().get(id));
    if (v === null) return undefined;
    const r = parseRecord(v);
    if (r.id !== id) throw new Error(`quarantine store: row ${id} holds another id`);
    return r;
  }

  async active(target: QuarantineTarget): Promise<QuarantineRecord | undefined> {
    const v = unwrap(await this.object().active(targetKey(target)));
    return v === null ? undefined : parseRecord(v);
  }

  async list(opts: { limit: number; before?: string }): Promise<QuarantineRecord[]> {
    checkList(opts);
    return unwrap(await this.object().list(opts.limit, opts.before ?? null)).map(parseRecord);
  }
}
