// Redis adapter for the TOFU pin store: one hash per domain (`{prefix}pins:{domain}`), field =
// tool id or "*", value = canonical JSON record. compareAndSwap runs as one Lua script so it is
// atomic against every other client. Records are re-validated on read (Redis is not trusted to
// hand back well-formed data; a corrupt record is an error, never "no pin"). With a MAC key each
// value is `<hmac hex>.<record>`, the HMAC bound to domain and tool, so a pin planted or edited in
// Redis (trusting an attacker's tool key) is refused.
import type { Redis } from "ioredis";
import {
  decodePinRecord,
  encodePinRecord,
  type PinRecord,
  type PinStore,
  pinField,
} from "../../../shared/schemapin/pins";
import { ValueMac } from "./value-mac";

// ARGV[2] / ARGV[3] carry a leading "=" when present, so an empty string never means absent.
const CAS_SCRIPT = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if cur then return 0 end
else
  if (not cur) or ('=' .. cur) ~= ARGV[2] then return 0 end
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], string.sub(ARGV[3], 2))
end
return 1
`;

export class RedisPinStore implements PinStore {
  readonly #mac: ValueMac | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    opts: { macKey?: Uint8Array } = {},
  ) {
    this.#mac = opts.macKey && new ValueMac(opts.macKey, "sigil.pin-record.v1");
  }

  #encode(domain: string, field: string, r: PinRecord): string {
    const json = encodePinRecord(r);
    // The MAC is bound to domain and tool.
    return this.#mac ? this.#mac.seal(`${domain}\n${field}`, json) : json;
  }

  #decode(domain: string, field: string, stored: string): PinRecord {
    if (!this.#mac) return decodePinRecord(stored);
    const json = this.#mac.open(`${domain}\n${field}`, stored);
    if (json === undefined)
      throw new Error(`pin store: record ${field}@${domain} failed its integrity check`);
    return decodePinRecord(json);
  }

  private key(domain: string): string {
    return `${this.prefix}pins:${domain}`;
  }

  async get(domain: string, toolId: string | null): Promise<PinRecord | null> {
    const field = pinField(toolId);
    const s = await this.redis.hget(this.key(domain), field);
    return s === null ? null : this.#decode(domain, field, s);
  }

  async list(domain: string): Promise<PinRecord[]> {
    const all = await this.redis.hgetall(this.key(domain));
    return Object.keys(all)
      .sort()
      .map((k) => this.#decode(domain, k, all[k]!));
  }

  async compareAndSwap(
    domain: string,
    toolId: string | null,
    expected: PinRecord | null,
    next: PinRecord | null,
  ): Promise<boolean> {
    const res = await this.redis.eval(
      CAS_SCRIPT,
      1,
      this.key(domain),
      pinField(toolId),
      expected === null ? "" : `=${this.#encode(domain, pinField(toolId), expected)}`,
      next === null ? "" : `=${this.#encode(domain, pinField(toolId), next)}`,
    );
    return res === 1;
  }

  async delete(domain: string, toolId: string | null): Promise<boolean> {
    return (await this.redis.hdel(this.key(domain), pinField(toolId))) === 1;
  }
}
