// Redis adapter for the TOFU pin store: one hash per domain (`{prefix}pins:{domain}`), field =
// tool id or "*", value = canonical JSON record. compareAndSwap runs as one Lua script so it is
// atomic against every other client. Records are re-validated on read (Redis is not trusted to
// hand back well-formed data; a corrupt record is an error, never "no pin").
import type { Redis } from "ioredis";
import {
  decodePinRecord,
  encodePinRecord,
  type PinRecord,
  type PinStore,
  pinField,
} from "../../../shared/schemapin/pins";

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
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(domain: string): string {
    return `${this.prefix}pins:${domain}`;
  }

  async get(domain: string, toolId: string | null): Promise<PinRecord | null> {
    const s = await this.redis.hget(this.key(domain), pinField(toolId));
    return s === null ? null : decodePinRecord(s);
  }

  async list(domain: string): Promise<PinRecord[]> {
    const all = await this.redis.hgetall(this.key(domain));
    return Object.keys(all)
      .sort()
      .map((k) => decodePinRecord(all[k]!));
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
      expected === null ? "" : `=${encodePinRecord(expected)}`,
      next === null ? "" : `=${encodePinRecord(next)}`,
    );
    return res === 1;
  }

  async delete(domain: string, toolId: string | null): Promise<boolean> {
    return (await this.redis.hdel(this.key(domain), pinField(toolId))) === 1;
  }
}

export const createRedisPinStore = (redis: Redis, prefix: string): PinStore =>
  new RedisPinStore(redis, prefix);
