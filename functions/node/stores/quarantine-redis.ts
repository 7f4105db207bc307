// Redis QuarantineStore (docs/incidents.md "Quarantine"). A record is a JSON string; its target's
// active pointer a second key. Placing and lifting are Lua scripts, so the "one active quarantine
// per target" check is atomic against every other API process: two processes placing at once
// store one record, two lifting at once lift it once. Records are kept (they are the history an
// auditor lists); an index sorted by id (UUIDv7, so newest last) pages them.
import type { Redis } from "ioredis";
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

// KEYS: active pointer, record, index. ARGV: id, json, record key prefix.
// → nil when stored; else the active record's JSON.
const PLACE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = redis.call('GET', ARGV[3] .. cur)
  if v then return v end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('quarantine exists') end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
return false`;

// KEYS: active pointer, record. ARGV: id, lifted json. → 1 lifted, 0 not (already lifted).
const LIFT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
return 1`;

export class RedisQuarantineStore implements QuarantineStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** `prefix`: key namespace, e.g. "sigil:". */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    // One hash tag: the scripts touch pointer, record and index in one slot.
    this.#prefix = `${prefix}quarantine:{q}:`;
  }

  #recordKey = (id: string) => `${this.#prefix}rec:${id}`;
  #activeKey = (t: QuarantineTarget) => `${this.#prefix}active:${targetKey(t)}`;
  get #index() {
    return `${this.#prefix}index`;
  }

  #decode(id: string, json: string): QuarantineRecord {
    const r = parseRecord(json);
    if (r.id !== id) throw new Error(`quarantine store: record ${id} holds another id`);
    return r;
  }

  async place(record: QuarantineRecord): Promise<{ placed: boolean; record: QuarantineRecord }> {
    const valid = QuarantineRecordSchema.parse(record);
    if (!isActive(valid)) throw new RangeError("quarantine store: a new record must be active");
    const json = JSON.stringify(valid);
    const cur = (await this.#redis.eval(
      PLACE,
      3,
      this.#activeKey(valid.target),
      this.#recordKey(valid.id),
      this.#index,
      valid.id,
      json,
      `${this.#prefix}rec:`,
    )) as string | null;
    if (cur === null) return { placed: true, record: parseRecord(json) };
    return { placed: false, record: parseRecord(cur) };
  }

  async lift(id: string, lift: { by: string; at: string; reason: string }) {
    const r = await this.get(id);
    if (!r) return undefined;
    if (!isActive(r)) return { lifted: false, record: r };
    const next = QuarantineRecordSchema.parse(liftedRecord(r, lift));
    const json = JSON.stringify(next);
    const won = await this.#redis.eval(
      LIFT,
      2,
      this.#activeKey(r.target),
      this.#recordKey(id),
      id,
      json,
    );
    if (won === 1) return { lifted: true, record: parseRecord(json) };
    // Another process lifted it first: report its record.
    const now = await this.get(id);
    return now ? { lifted: false, record: now } : undefined;
  }

  async get(id: string): Promise<QuarantineRecord | undefined> {
    const json = await this.#redis.get(this.#recordKey(id));
    return json === null ? undefined : this.#decode(id, json);
  }

  async active(target: QuarantineTarget): Promise<QuarantineRecord | undefined> {
    const id = await this.#redis.get(this.#activeKey(target));
    if (id === null) return undefined;
    const r = await this.get(id);
    // A pointer at a lifted or missing record is no quarantine in force.
    return r && isActive(r) ? r : undefined;
  }

  async list(opts: { limit: number; before?: string }): Promise<QuarantineRecord[]> {
    checkList(opts);
    const ids = await this.#redis.zrevrangebylex(
      this.#index,
      opts.before === undefined ? "+" : `(${opts.before}`,
      "-",
      "LIMIT",
      0,
      opts.limit,
    );
    if (ids.length === 0) return [];
    const values = await this.#redis.mget(...ids.map(this.#recordKey));
    const out: QuarantineRecord[] = [];
    ids.forEach((id, i) => {
      const v = values[i];
      if (v != null) out.push(this.#decode(id, v));
    });
    return out;
  }
}
