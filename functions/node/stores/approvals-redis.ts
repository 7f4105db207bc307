// Redis ApprovalStore. A record is a hash {rev, v} where v is `<hmac hex>.<json>` (Redis is not
// trusted: a record planted or edited there, say pending → approved, fails its MAC and is an
// error, never an approval). Creating and replacing run as Lua scripts, so the binding check and
// the revision compare-and-set are atomic against every other API process: of two answers at once
// exactly one lands. Every key expires at the record's retention time; the index (a sorted set by
// id, ids being UUIDv7) forgets ids whose record is gone as list() meets them.
import type { Redis } from "ioredis";
import {
  type ApprovalChange,
  type ApprovalRecord,
  ApprovalRecordSchema,
  type ApprovalStore,
  type CreateResult,
  checkChanges,
  checkList,
  checkSwap,
  MAX_APPROVAL_CHANGES,
  type StoredApproval,
} from "../../../shared/approvals";
import { appendChange, RedisChangeLog } from "./change-log-redis";
import { ValueMac } from "./value-mac";

// KEYS: binding, record, index, changes. ARGV: id, value, replacing ("" for none), retainUntil
// (ms), the record key prefix.
// The binding counts only while its record exists (a forgotten record points at nothing).
const CREATE = `
local cur = redis.call('GET', KEYS[1])
if cur and redis.call('EXISTS', ARGV[5] .. cur) == 1 and cur ~= ARGV[3] then return cur end
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.error_reply('approval exists') end
redis.call('HSET', KEYS[2], 'rev', '1', 'v', ARGV[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[4])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
${appendChange("KEYS[4]", "ARGV[6]", "ARGV[1]")}
return false`;

// KEYS: record, changes. ARGV: expected rev, value, retainUntil, id, feed length. → 1 replaced.
const SWAP = `
if redis.call('HGET', KEYS[1], 'rev') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rev', tostring(tonumber(ARGV[1]) + 1), 'v', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
${appendChange("KEYS[2]", "ARGV[5]", "ARGV[4]")}
return 1`;

export class RedisApprovalStore implements ApprovalStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #mac: ValueMac;
  readonly #feed: RedisChangeLog;

  /** `prefix`: key namespace, e.g. "sigil:"; `macKey`: 32 bytes, shared by every API process. */
  constructor(redis: Redis, prefix: string, opts: { macKey: Uint8Array }) {
    this.#mac = new ValueMac(opts.macKey, "sigil.approval-record.v1");
    this.#redis = redis;
    // One hash tag: the scripts touch binding, record and index in one slot.
    this.#prefix = `${prefix}approvals:{a}:`;
    this.#feed = new RedisChangeLog(redis, `${this.#prefix}changes`, MAX_APPROVAL_CHANGES);
  }

  #recordKey = (id: string) => `${this.#prefix}rec:${id}`;
  #bindingKey = (binding: string) => `${this.#prefix}bind:${binding}`;
  get #index() {
    return `${this.#prefix}index`;
  }

  #encode(r: ApprovalRecord): string {
    const json = JSON.stringify(ApprovalRecordSchema.parse(r));
    return this.#mac.seal(r.id, json);
  }

  #decode(id: string, stored: string): ApprovalRecord {
    const json = this.#mac.open(id, stored);
    if (json === undefined)
      throw new Error(`approval store: record ${id} failed its integrity check`);
    const r = ApprovalRecordSchema.parse(JSON.parse(json));
    if (r.id !== id) throw new Error(`approval store: record ${id} holds another id`);
    return r;
  }

  async create(record: ApprovalRecord, replacing: string | null): Promise<CreateResult> {
    const value = this.#encode(record);
    const cur = (await this.#redis.eval(
      CREATE,
      4,
      this.#bindingKey(record.binding),
      this.#recordKey(record.id),
      this.#index,
      this.#feed.key,
      record.id,
      value,
      replacing ?? "",
      String(record.retainUntil),
      `${this.#prefix}rec:`,
      this.#feed.keep,
    )) as string | null;
    return cur === null ? { created: true } : { created: false, current: cur };
  }

  async byBinding(binding: string): Promise<string | undefined> {
    const id = await this.#redis.get(this.#bindingKey(binding));
    return id ?? undefined;
  }

  async get(id: string): Promise<StoredApproval | undefined> {
    const h = await this.#redis.hmget(this.#recordKey(id), "rev", "v");
    const [revText, value] = h;
    if (revText == null || value == null) return undefined;
    const rev = Number(revText);
    if (!Number.isSafeInteger(rev) || rev < 1) {
      throw new Error(`approval store: record ${id} has a bad revision`);
    }
    return { rev, record: this.#decode(id, value) };
  }

  async swap(id: string, rev: number, next: ApprovalRecord): Promise<boolean> {
    checkSwap(id, rev, next);
    const res = await this.#redis.eval(
      SWAP,
      2,
      this.#recordKey(id),
      this.#feed.key,
      String(rev),
      this.#encode(next),
      String(next.retainUntil),
      id,
      this.#feed.keep,
    );
    return res === 1;
  }

  async list(opts: { limit: number; before?: string }): Promise<StoredApproval[]> {
    checkList(opts);
    const out: StoredApproval[] = [];
    let before = opts.before;
    // Gone records (retention) are skipped and dropped from the index; a few rounds at most.
    for (let round = 0; round < 8 && out.length < opts.limit; round++) {
      const ids = await this.#redis.zrevrangebylex(
        this.#index,
        before === undefined ? "+" : `(${before}`,
        "-",
        "LIMIT",
        0,
        opts.limit - out.length,
      );
      if (ids.length === 0) break;
      const gone: string[] = [];
      for (const id of ids) {
        const s = await this.get(id);
        if (s) out.push(s);
        else gone.push(id);
      }
      if (gone.length > 0) await this.#redis.zrem(this.#index, ...gone);
      before = ids[ids.length - 1]!;
    }
    return out;
  }

  async changes(after: string, limit: number): Promise<ApprovalChange[]> {
    checkChanges(after, limit);
    return this.#feed.changes(after, limit);
  }

  async changeCursor(): Promise<string> {
    return this.#feed.cursor();
  }
}
