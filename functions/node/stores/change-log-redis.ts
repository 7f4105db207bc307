// The change feed of a Redis store (approvals, incidents: docs/governance.md "Approvals",
// docs/incidents.md): a stream whose entries carry the changed record's id. The store's own Lua
// script appends with `appendChange`, so the change lands with the record or not at all; the
// cursor is the stream id, which orders after all earlier ones across every API process.
import type { Redis } from "ioredis";

/**
 * The Lua statement that appends `id` to the feed `key`, trimmed to about `keep` entries (each
 * argument a Lua expression, e.g. "KEYS[2]"). What `RedisChangeLog.changes` reads back.
 */
export const appendChange = (key: string, keep: string, id: string): string =>
  `redis.call('XADD', ${key}, 'MAXLEN', '~', ${keep}, '*', 'id', ${id})`;

export class RedisChangeLog {
  /** The feed length, as the scripts take it in ARGV. */
  readonly keep: string;

  /** `key`: the stream (in the hash slot of the records its scripts touch); `keep`: MAX_*_CHANGES. */
  constructor(
    private readonly redis: Redis,
    readonly key: string,
    keep: number,
  ) {
    this.keep = String(keep);
  }

  /** At most `limit` changes after `after` (checked by the port), oldest first. */
  async changes(after: string, limit: number): Promise<{ cursor: string; id: string }[]> {
    // A plain number is a cursor from before the first change ("0").
    const start = after.includes("-") ? `(${after}` : `(${after}-0`;
    const entries = (await this.redis.xrange(this.key, start, "+", "COUNT", limit)) as [
      string,
      string[],
    ][];
    return entries.map(([cursor, fields]) => ({ cursor, id: fields[1] ?? "" }));
  }

  /** The newest change's cursor ("0" before the first). */
  async cursor(): Promise<string> {
    const last = (await this.redis.xrevrange(this.key, "+", "-", "COUNT", 1)) as [
      string,
      string[],
    ][];
    return last[0]?.[0] ?? "0";
  }
}
