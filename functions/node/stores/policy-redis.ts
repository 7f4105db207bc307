// Redis adapter for the policy store port. Mutations are single Lua scripts (atomic);
// version records are immutable once written, so reads need only the current-pointer map
// and the revision read together (MULTI) and can then fetch the records.
//
// Keys under `prefix`: `cur` (hash name → current version), `max` (hash name → last
// version), `v:<name>` (hash version → JSON record), `rev` (mutation counter).
// With a MAC key, each record carries an HMAC over its document name and content, so someone who
// can write to Redis cannot plant or edit a policy (authorization) or move one between names.
// It cannot stop `cur` being pointed back at an older authentic version.
import type { Redis } from "ioredis";
import { z } from "zod";
import { hmacSha256, verifyHmacSha256 } from "../../../shared/crypto";
import { canonicalJson, fromHex, toHex, utf8 } from "../../../shared/encoding";
import {
  assertPolicyName,
  type NewVersion,
  type PolicyRecord,
  type PolicySnapshot,
  type PolicyStorePort,
  type PolicyVersionInfo,
} from "../../../shared/policy";

const PUT = `
local v = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[2], tostring(v), ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], v)
redis.call('INCR', KEYS[4])
return v`;

const SET_CURRENT = `
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
return 1`;

const DELETE = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1`;

// Redis is not trusted: stored records are validated on the way out.
const StoredSchema = z
  .object({
    source: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    createdAt: z.string(),
    mac: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  })
  .strict();

const MAC_CONTEXT = "sigil.policy-record.v1";
const macInput = (name: string, r: { source: string; sha256: string; createdAt: string }) =>
  utf8(
    `${MAC_CONTEXT}\n${name}\n${canonicalJson({ source: r.source, sha256: r.sha256, createdAt: r.createdAt })}`,
  );

function decode(name: string, version: number, raw: string, macKey?: Uint8Array): PolicyRecord {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new Error(`policy store: record ${name} v${version} is not JSON`);
  }
  const r = StoredSchema.safeParse(value);
  if (!r.success) throw new Error(`policy store: record ${name} v${version} is malformed`);
  const { mac, ...rec } = r.data;
  if (
    macKey &&
    (mac === undefined || !verifyHmacSha256(macKey, macInput(name, rec), fromHex(mac)))
  ) {
    throw new Error(`policy store: record ${name} v${version} failed its integrity check`);
  }
  return { name, version, ...rec };
}

export interface RedisPolicyStoreOptions {
  /** 32-byte key for the records' HMAC; without it records are hash- and schema-checked only. */
  macKey?: Uint8Array;
}

function toVersion(raw: string | null | undefined): number | null {
  if (raw === null || raw === undefined) return null;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error("policy store: corrupt version number");
  return n;
}

export class RedisPolicyStore implements PolicyStorePort {
  readonly #mac: Uint8Array | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    opts: RedisPolicyStoreOptions = {},
  ) {
    if (opts.macKey && opts.macKey.length !== 32) throw new TypeError("macKey must be 32 bytes");
    this.#mac = opts.macKey;
  }

  private key(part: string): string {
    return this.prefix + part;
  }

  private vkey(name: string): string {
    assertPolicyName(name);
    return this.key(`v:${name}`);
  }

  async put(name: string, v: NewVersion): Promise<number> {
    const body = { source: v.source, sha256: v.sha256, createdAt: v.createdAt };
    const rec = JSON.stringify(
      this.#mac ? { ...body, mac: toHex(hmacSha256(this.#mac, macInput(name, body))) } : body,
    );
    const n = await this.redis.eval(
      PUT,
      4,
      this.key("max"),
      this.vkey(name),
      this.key("cur"),
      this.key("rev"),
      name,
      rec,
    );
    return Number(n);
  }

  async get(name: string, version?: number): Promise<PolicyRecord | null> {
    const vkey = this.vkey(name);
    const n = version ?? toVersion(await this.redis.hget(this.key("cur"), name));
    if (n === null || !Number.isSafeInteger(n) || n < 1) return null;
    const raw = await this.redis.hget(vkey, String(n));
    return raw === null ? null : decode(name, n, raw, this.#mac);
  }

  async versions(name: string): Promise<PolicyVersionInfo[]> {
    const vkey = this.vkey(name);
    const res = await this.redis.multi().hgetall(vkey).hget(this.key("cur"), name).exec();
    if (!res) throw new Error("policy store: transaction aborted");
    const [[e1, all], [e2, cur]] = res as [
      [Error | null, Record<string, string>],
      [Error | null, string | null],
    ];
    if (e1 || e2) throw e1 ?? e2;
    const current = toVersion(cur);
    return Object.entries(all)
      .map(([k, raw]) => {
        const version = toVersion(k)!;
        const r = decode(name, version, raw, this.#mac);
        return { version, sha256: r.sha256, createdAt: r.createdAt, current: version === current };
      })
      .sort((a, b) => a.version - b.version);
  }

  async setCurrent(name: string, version: number): Promise<boolean> {
    if (!Number.isSafeInteger(version) || version < 1) return false;
    const ok = await this.redis.eval(
      SET_CURRENT,
      3,
      this.vkey(name),
      this.key("cur"),
      this.key("rev"),
      name,
      String(version),
    );
    return Number(ok) === 1;
  }

  async delete(name: string): Promise<boolean> {
    this.vkey(name);
    const ok = await this.redis.eval(DELETE, 2, this.key("cur"), this.key("rev"), name);
    return Number(ok) === 1;
  }

  async snapshot(): Promise<PolicySnapshot> {
    const res = await this.redis.multi().hgetall(this.key("cur")).get(this.key("rev")).exec();
    if (!res) throw new Error("policy store: transaction aborted");
    const [[e1, cur], [e2, rev]] = res as [
      [Error | null, Record<string, string>],
      [Error | null, string | null],
    ];
    if (e1 || e2) throw e1 ?? e2;
    const names = Object.keys(cur).sort();
    const pipe = this.redis.pipeline();
    const versions = names.map((name) => {
      const v = toVersion(cur[name])!;
      pipe.hget(this.vkey(name), String(v));
      return v;
    });
    const raws = names.length > 0 ? ((await pipe.exec()) ?? []) : [];
    const documents = names.map((name, i) => {
      const [err, raw] = raws[i] ?? [new Error("missing reply"), null];
      if (err) throw err;
      if (typeof raw !== "string") throw new Error(`policy store: record ${name} is missing`);
      return decode(name, versions[i]!, raw, this.#mac);
    });
    return { revision: Number(rev ?? 0), documents };
  }

  async revision(): Promise<number> {
    return Number((await this.redis.get(this.key("rev"))) ?? 0);
  }
}
