// SubjectKeyStore in Redis (docs/data-subjects.md): `<prefix>subjects:id:<hash>` holds the record
// (active with its wrapped key, or the erased tombstone) and `<prefix>subjects:ref:<ref>` the
// wrapped key by ref for reads. Create and erase are Lua scripts, so a create racing an erasure
// cannot bring a key back. Redis is not trusted: a wrapped key only unwraps under the key hierarchy's
// KEK, bound to its ref, and a record is re-validated on every read.
import type { Redis } from "ioredis";
import {
  type ActiveSubject,
  checkActive,
  checkHash,
  checkInstant,
  checkRef,
  parseRecord,
  type SubjectKeyStore,
  type SubjectRecord,
} from "../../../shared/subjects";

// KEYS[1] record; ARGV[1] record JSON, ARGV[2] ref key, ARGV[3] wrapped key.
const CREATE = `
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', ARGV[2], ARGV[3])
return false`;

// KEYS[1] record; ARGV[1] tombstone JSON, ARGV[2] ref-key prefix. Returns the record before.
const ERASE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, r = pcall(cjson.decode, cur)
  if ok and type(r) == 'table' and r.state == 'erased' then return cur end
  if ok and type(r) == 'table' and type(r.ref) == 'string' then
    redis.call('DEL', ARGV[2] .. r.ref)
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return cur`;

export class RedisSubjectKeyStore implements SubjectKeyStore {
  readonly #redis: Redis;
  readonly #prefix: string;

  /** `prefix` ends with ":" (e.g. "sigil:"). */
  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = `${prefix}subjects:`;
  }

  #idKey = (h: string) => `${this.#prefix}id:${checkHash(h)}`;
  #refKey = (ref: string) => `${this.#prefix}ref:${checkRef(ref)}`;

  async createOrGet(subjectHash: string, candidate: ActiveSubject): Promise<SubjectRecord> {
    const c = checkActive(candidate);
    const json = JSON.stringify(c);
    const cur = (await this.#redis.eval(
      CREATE,
      1,
      this.#idKey(subjectHash),
      json,
      this.#refKey(c.ref),
      c.wrappedKey,
    )) as string | null;
    return parseRecord(cur ?? json)!;
  }

  async get(subjectHash: string): Promise<SubjectRecord | undefined> {
    return parseRecord(await this.#redis.get(this.#idKey(subjectHash)));
  }

  async wrappedKey(ref: string): Promise<string | undefined> {
    return (await this.#redis.get(this.#refKey(ref))) ?? undefined;
  }

  async erase(subjectHash: string, erasedAt: string): Promise<SubjectRecord | undefined> {
    const tomb = JSON.stringify({ state: "erased", erasedAt: checkInstant(erasedAt) });
    const before = (await this.#redis.eval(
      ERASE,
      1,
      this.#idKey(subjectHash),
      tomb,
      `${this.#prefix}ref:`,
    )) as string | null;
    return parseRecord(before);
  }
}
