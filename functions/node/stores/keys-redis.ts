// KeyRegistry on Redis. Records are JSON strings under `${prefix}key:${kid}`; sorted sets index them
// by creation time (all keys and per role). State transitions are computed by the same pure
// functions as the memory adapter and applied with compare-and-set Lua scripts, so concurrent
// rotations or revocations of one key cannot both win. Reads are schema-checked and the kid must
// match the stored public key: Redis is not trusted to hand back a well-formed or swapped record.
// With a MAC key, every record also carries an HMAC-SHA256 bound to its kid, so someone who can
// write to Redis cannot add a key (say, an admin key) or edit one; reads fail closed on a bad MAC.
// What a MAC cannot stop: putting back an older authentic version of a record (un-revoking it).
import type { Redis } from "ioredis";
import { hmacSha256, verifyHmacSha256 } from "../../../shared/crypto";
import { canonicalJson, fromHex, toHex, utf8 } from "../../../shared/encoding";
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

export interface RedisKeyRegistryOptions {
  /** 32-byte key for the records' HMAC; without it records are schema-checked only. */
  macKey?: Uint8Array;
}

const MAC_CONTEXT = "sigil.key-record.v1";

export class RedisKeyRegistry implements KeyRegistry {
  readonly #mac: Uint8Array | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    opts: RedisKeyRegistryOptions = {},
  ) {
    if (opts.macKey && opts.macKey.length !== 32) throw new TypeError("macKey must be 32 bytes");
    this.#mac = opts.macKey;
  }

  #tag(kid: string, stored: unknown): Uint8Array {
    return hmacSha256(this.#mac!, utf8(`${MAC_CONTEXT}\n${kid}\n${canonicalJson(stored)}`));
  }

  /** The stored form: plain JSON, or {record, mac} when records are authenticated. */
  #encode(r: KeyRecord): string {
    const stored = toStored(r);
    return JSON.stringify(
      this.#mac ? { record: stored, mac: toHex(this.#tag(r.kid, stored)) } : stored,
    );
  }

  #parse(raw: string, kid: string): KeyRecord {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      throw new KeyRegistryError("invalid", "stored key record is not JSON");
    }
    if (this.#mac) {
      const v = value as { record?: unknown; mac?: unknown } | null;
      if (
        !v ||
        typeof v !== "object" ||
        typeof v.mac !== "string" ||
        !/^[0-9a-f]{64}$/.test(v.mac)
      ) {
        throw new KeyRegistryError("invalid", `key record ${kid} has no integrity tag`);
      }
      if (
        !verifyHmacSha256(
          this.#mac,
          utf8(`${MAC_CONTEXT}\n${kid}\n${canonicalJson(v.record)}`),
          fromHex(v.mac),
        )
      ) {
        throw new KeyRegistryError("invalid", `key record ${kid} failed its integrity check`);
      }
      value = v.record;
    }
    const r = fromStored(value);
    if (r.kid !== kid)
      throw new KeyRegistryError("invalid", "stored key record is under the wrong kid");
    return r;
  }

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
      this.#encode(r),
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
    return this.#parse(raw, kid);
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
      const r = this.#parse(raw, kids[i]!);
      if (role !== undefined && r.role !== role) {
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
        this.#encode(retired),
        this.#encode(next),
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
      const res = await this.redis.eval(CAS, 1, this.#key(kid), raw, this.#encode(r));
      if (res === "ok") return r;
    }
    throw new KeyRegistryError("conflict", `key ${kid} kept changing during revocation`);
  }

  async #load(kid: string): Promise<[string, KeyRecord]> {
    const raw = await this.redis.get(this.#key(kid));
    if (raw === null) throw new KeyRegistryError("not_found", `unknown key ${kid}`);
    return [raw, this.#parse(raw, kid)];
  }
}
