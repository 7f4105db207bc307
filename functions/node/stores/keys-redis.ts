// KeyRegistry on Redis. Records are JSON strings under `${prefix}key:${kid}`; sorted sets index them
// by creation time (all keys and per role). State transitions are computed by the same pure
// functions as the memory adapter and applied with compare-and-set Lua scripts, so concurrent
// rotations or revocations of one key cannot both win. Reads are schema-checked and the kid must
// match the stored public key: Redis is not trusted to hand back a well-formed or swapped record.
import type { Redis } from "ioredis";
import {
  fromStored,
  type KeyRecord,
  KeyRegistryError,
  type KeyRole,
  newRecord,
  type RegisterKeyInput,
  type RevokeOptions,
  type RotateOptions,
  revocation,
  rotation,
  toStored,
} from "../../../shared/keys/record";
import type { KeyRegistry } from "../../../shared/keys/registry";

// KEYS: record, all-index, role-index. ARGV: json, score, kid.
const REGISTER = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
return 'ok'`;

// KEYS: old record, new record, all-index, role-index.
// ARGV: expected old json, updated old json, new json, new score, new kid.
const ROTATE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'conflict' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
return 'ok'`;

// KEYS: record. ARGV: expected json, new json.
const CAS = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'conflict' end
redis.call('SET', KEYS[1], ARGV[2])
return 'ok'`;

const MAX_ATTEMPTS = 5;

export class RedisKeyRegistry implements KeyRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  #key = (kid: string) => `${this.prefix}key:${kid}`;
  #all = () => `${this.prefix}keys`;
  #role = (role: KeyRole) => `${this.prefix}role:${role}`;

  async register(input: RegisterKeyInput): Promise<KeyRecord> {
    const r = newRecord(input);
    const res = await this.redis.eval(
      REGISTER,
      3,
      this.#key(r.kid),
      this.#all(),
      this.#role(r.role),
      JSON.stringify(toStored(r)),
      r.createdAt,
      r.kid,
    );
    if (res === "exists") throw new KeyRegistryError("exists", `key ${r.kid} already registered`);
    if (res !== "ok") throw new KeyRegistryError("conflict", "unexpected store reply");
    return r;
  }

  async get(kid: string): Promise<KeyRecord | undefined> {
    const raw = await this.redis.get(this.#key(kid));
    if (raw === null) return undefined;
    const r = parse(raw);
    if (r.kid !== kid)
      throw new KeyRegistryError("invalid", "stored key record is under the wrong kid");
    return r;
  }

  async list(role?: KeyRole): Promise<KeyRecord[]> {
    const kids = await this.redis.zrange(
      role === undefined ? this.#all() : this.#role(role),
      "0",
      "-1",
    );
    if (kids.length === 0) return [];
    const raws = await this.redis.mget(kids.map((k) => this.#key(k)));
    const out: KeyRecord[] = [];
    raws.forEach((raw, i) => {
      if (raw === null) throw new KeyRegistryError("invalid", `index names missing key ${kids[i]}`);
      const r = parse(raw);
      if (r.kid !== kids[i] || (role !== undefined && r.role !== role)) {
        throw new KeyRegistryError("invalid", "key index does not match its records");
      }
      out.push(r);
    });
    return out;
  }

  async rotate(
    kid: string,
    newPublicKey: Uint8Array,
    now: number,
    opts?: RotateOptions,
  ): Promise<KeyRecord> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [raw, old] = await this.#load(kid);
      const [retired, next] = rotation(old, newPublicKey, now, opts);
      const res = await this.redis.eval(
        ROTATE,
        4,
        this.#key(kid),
        this.#key(next.kid),
        this.#all(),
        this.#role(next.role),
        raw,
        JSON.stringify(toStored(retired)),
        JSON.stringify(toStored(next)),
        next.createdAt,
        next.kid,
      );
      if (res === "ok") return next;
      if (res === "exists")
        throw new KeyRegistryError("exists", `key ${next.kid} already registered`);
    }
    throw new KeyRegistryError("conflict", `key ${kid} kept changing during rotation`);
  }

  async revoke(kid: string, now: number, opts?: RevokeOptions): Promise<KeyRecord> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [raw, old] = await this.#load(kid);
      const r = revocation(old, now, opts);
      const res = await this.redis.eval(CAS, 1, this.#key(kid), raw, JSON.stringify(toStored(r)));
      if (res === "ok") return r;
    }
    throw new KeyRegistryError("conflict", `key ${kid} kept changing during revocation`);
  }

  async #load(kid: string): Promise<[string, KeyRecord]> {
    const raw = await this.redis.get(this.#key(kid));
    if (raw === null) throw new KeyRegistryError("not_found", `unknown key ${kid}`);
    const r = parse(raw);
    if (r.kid !== kid)
      throw new KeyRegistryError("invalid", "stored key record is under the wrong kid");
    return [raw, r];
  }
}

function parse(raw: string): KeyRecord {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new KeyRegistryError("invalid", "stored key record is not JSON");
  }
  return fromStored(value);
}
