// Redis IncidentStore (docs/incidents.md). Every value is `<hmac hex>.<json>` (Redis is not
// trusted: a record, checkpoint or bundle planted or edited there fails its MAC and is an error,
// never an incident state). The detection checkpoint, the records it opens and the ones it joins
// change in one Lua script that first compares the cursor and every revision, so of two API
// processes stepping over the same audit events exactly one lands (exactly-once detection); a
// process killed before the script ran stored nothing, one killed after it stored everything.
import type { Redis } from "ioredis";
import {
  checkAdvance,
  checkChanges,
  checkList,
  type DetectionCheckpoint,
  type Emergency,
  EmergencySchema,
  type Incident,
  type IncidentChange,
  IncidentSchema,
  type IncidentStore,
  MAX_EVIDENCE_CHARS,
  MAX_INCIDENT_CHANGES,
  type StoredIncident,
} from "../../../shared/incidents";
import { appendChange, RedisChangeLog } from "./change-log-redis";
import { ValueMac } from "./value-mac";

// KEYS: checkpoint, index, changes, then one record key per opened and per updated incident.
// ARGV: expected cursor, next cursor, next checkpoint value, feed length, opened count, then
// (id, value) per opened, then (id, rev, value) per updated. → 1 stored, 0 lost the race.
const ADVANCE = `
local cur = redis.call('HGET', KEYS[1], 'cursor') or '0'
if cur ~= ARGV[1] then return 0 end
local opened = tonumber(ARGV[5])
local k = 4
local a = 6
for i = 1, opened do
  if redis.call('EXISTS', KEYS[k]) == 1 then return redis.error_reply('incident exists') end
  k = k + 1
  a = a + 2
end
local ku, au = k, a
while KEYS[ku] do
  if redis.call('HGET', KEYS[ku], 'rev') ~= ARGV[au + 1] then return 0 end
  ku = ku + 1
  au = au + 3
end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2], 'v', ARGV[3])
k, a = 4, 6
for i = 1, opened do
  redis.call('HSET', KEYS[k], 'rev', '1', 'v', ARGV[a + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[a])
  ${appendChange("KEYS[3]", "ARGV[4]", "ARGV[a]")}
  k = k + 1
  a = a + 2
end
while KEYS[k] do
  redis.call('HSET', KEYS[k], 'rev', tostring(tonumber(ARGV[a + 1]) + 1), 'v', ARGV[a + 2])
  ${appendChange("KEYS[3]", "ARGV[4]", "ARGV[a]")}
  k = k + 1
  a = a + 3
end
return 1`;

// KEYS: hash, changes. ARGV: expected rev, value, id ("": no change, for emergency mode, which is no
// record and starts unset at revision 0), feed length. → 1 replaced. Unlike approvals' SWAP no
// retention: incident records are kept.
const SWAP = `
if (redis.call('HGET', KEYS[1], 'rev') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'rev', tostring(tonumber(ARGV[1]) + 1), 'v', ARGV[2])
if ARGV[3] ~= '' then ${appendChange("KEYS[2]", "ARGV[4]", "ARGV[3]")} end
return 1`;

export class RedisIncidentStore implements IncidentStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #mac: ValueMac;
  readonly #feed: RedisChangeLog;

  /** `prefix`: key namespace, e.g. "sigil:"; `macKey`: 32 bytes, shared by every API process. */
  constructor(redis: Redis, prefix: string, opts: { macKey: Uint8Array }) {
    this.#mac = new ValueMac(opts.macKey, "sigil.incident-store.v1");
    this.#redis = redis;
    // One hash tag: the advance script touches the checkpoint and many records in one slot.
    this.#prefix = `${prefix}incidents:{i}:`;
    this.#feed = new RedisChangeLog(redis, this.#key("changes"), MAX_INCIDENT_CHANGES);
  }

  #key = (kind: string, id = "") => `${this.#prefix}${kind}${id ? `:${id}` : ""}`;

  #open(name: string, stored: string): string {
    const json = this.#mac.open(name, stored);
    if (json === undefined) throw new Error(`incident store: ${name} failed its integrity check`);
    return json;
  }

  #encodeRecord(r: Incident): string {
    return this.#mac.seal(`record:${r.incidentId}`, JSON.stringify(IncidentSchema.parse(r)));
  }

  async detection(): Promise<DetectionCheckpoint> {
    const [cursor, v] = await this.#redis.hmget(this.#key("detection"), "cursor", "v");
    if (cursor == null || v == null) return { cursor: 0, state: "" };
    const cp = JSON.parse(this.#open("detection", v)) as DetectionCheckpoint;
    if (String(cp.cursor) !== cursor || typeof cp.state !== "string")
      throw new Error("incident store: the detection checkpoint does not match its cursor");
    return cp;
  }

  async advance(
    expected: number,
    next: DetectionCheckpoint,
    opened: readonly Incident[],
    updated: readonly StoredIncident[] = [],
  ): Promise<boolean> {
    checkAdvance(expected, next);
    const keys = [this.#key("detection"), this.#key("index"), this.#feed.key];
    const argv = [
      String(expected),
      String(next.cursor),
      this.#mac.seal("detection", JSON.stringify({ cursor: next.cursor, state: next.state })),
      this.#feed.keep,
      String(opened.length),
    ];
    for (const r of opened) {
      keys.push(this.#key("rec", r.incidentId));
      argv.push(r.incidentId, this.#encodeRecord(r));
    }
    for (const u of updated) {
      if (!Number.isSafeInteger(u.rev) || u.rev < 1)
        throw new RangeError("incident store: bad revision");
      keys.push(this.#key("rec", u.record.incidentId));
      argv.push(u.record.incidentId, String(u.rev), this.#encodeRecord(u.record));
    }
    const res = await this.#redis.eval(ADVANCE, keys.length, ...keys, ...argv);
    return res === 1;
  }

  async get(id: string): Promise<StoredIncident | undefined> {
    const [revText, value] = await this.#redis.hmget(this.#key("rec", id), "rev", "v");
    if (revText == null || value == null) return undefined;
    const rev = Number(revText);
    if (!Number.isSafeInteger(rev) || rev < 1)
      throw new Error(`incident store: record ${id} has a bad revision`);
    const record = IncidentSchema.parse(JSON.parse(this.#open(`record:${id}`, value)));
    if (record.incidentId !== id) throw new Error(`incident store: record ${id} holds another id`);
    return { rev, record };
  }

  async swap(id: string, rev: number, next: Incident): Promise<boolean> {
    if (next.incidentId !== id)
      throw new RangeError("incident store: a record cannot change its id");
    if (!Number.isSafeInteger(rev) || rev < 1) throw new RangeError("incident store: bad revision");
    const res = await this.#redis.eval(
      SWAP,
      2,
      this.#key("rec", id),
      this.#feed.key,
      String(rev),
      this.#encodeRecord(next),
      id,
      this.#feed.keep,
    );
    return res === 1;
  }

  async list(opts: { limit: number; before?: string }): Promise<StoredIncident[]> {
    checkList(opts);
    const ids = await this.#redis.zrevrangebylex(
      this.#key("index"),
      opts.before === undefined ? "+" : `(${opts.before}`,
      "-",
      "LIMIT",
      0,
      opts.limit,
    );
    const out: StoredIncident[] = [];
    for (const id of ids) {
      const s = await this.get(id);
      if (s) out.push(s);
    }
    return out;
  }

  async changes(after: string, limit: number): Promise<IncidentChange[]> {
    checkChanges(after, limit);
    return this.#feed.changes(after, limit);
  }

  async changeCursor(): Promise<string> {
    return this.#feed.cursor();
  }

  async putEvidence(id: string, bundle: string): Promise<boolean> {
    if (bundle.length > MAX_EVIDENCE_CHARS)
      throw new RangeError("incident store: evidence bundle too large");
    // SET NX: the first bundle stays; evidence is never replaced.
    const res = await this.#redis.set(
      this.#key("evidence", id),
      this.#mac.seal(`evidence:${id}`, bundle),
      "NX",
    );
    return res === "OK";
  }

  async evidence(id: string): Promise<string | undefined> {
    const v = await this.#redis.get(this.#key("evidence", id));
    return v === null ? undefined : this.#open(`evidence:${id}`, v);
  }

  async emergency(): Promise<{ rev: number; value: Emergency | undefined }> {
    const [revText, value] = await this.#redis.hmget(this.#key("emergency"), "rev", "v");
    if (revText == null || value == null) return { rev: 0, value: undefined };
    const rev = Number(revText);
    if (!Number.isSafeInteger(rev) || rev < 1)
      throw new Error("incident store: emergency has a bad revision");
    return { rev, value: EmergencySchema.parse(JSON.parse(this.#open("emergency", value))) };
  }

  async swapEmergency(rev: number, next: Emergency): Promise<boolean> {
    if (!Number.isSafeInteger(rev) || rev < 0) throw new RangeError("incident store: bad revision");
    const json = JSON.stringify(EmergencySchema.parse(next));
    const res = await this.#redis.eval(
      SWAP,
      2,
      this.#key("emergency"),
      this.#feed.key,
      String(rev),
      this.#mac.seal("emergency", json),
      "",
      this.#feed.keep,
    );
    return res === 1;
  }
}
