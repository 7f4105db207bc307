// LimitsObject: the token buckets of one partition (one subject: its own bucket and its keys'),
// so a take over several buckets is one synchronous SQL read-decide-write, atomic within the
// object, applying the same pure rules (shared/limits/bucket.ts) as every other adapter. A row
// whose bucket is full again says nothing an absent row would not; an alarm deletes those.
import {
  type BucketSpec,
  type BucketState,
  checkTake,
  msUntilFull,
  type TakeResult,
  take,
} from "../../../shared/limits";
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA =
  "CREATE TABLE IF NOT EXISTS buckets (k TEXT PRIMARY KEY, tokens REAL NOT NULL, at INTEGER NOT NULL, forget INTEGER NOT NULL);";

export class LimitsObject extends SqlObject {
  #alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  take(buckets: BucketSpec[], cost: number): Promise<Result<TakeResult>> {
    return capture(async () => {
      checkTake(buckets, cost);
      const sql = this.ctx.storage.sql;
      const now = Date.now();
      const states = buckets.map(
        (b): BucketState | undefined =>
          sql
            .exec<{ tokens: number; at: number }>(
              "SELECT tokens, at FROM buckets WHERE k = ?",
              b.key,
            )
            .toArray()[0],
      );
      const out = take(states, buckets, cost, now);
      if (!out.next)
        return { allowed: false, retryAfterMs: out.retryAfterMs, limitedBy: out.limitedBy! };
      let earliest = Number.POSITIVE_INFINITY;
      out.next.forEach((s, i) => {
        const forget = now + msUntilFull(s.tokens, buckets[i]!);
        earliest = Math.min(earliest, forget);
        sql.exec(
          "INSERT OR REPLACE INTO buckets (k, tokens, at, forget) VALUES (?, ?, ?, ?)",
          buckets[i]!.key,
          s.tokens,
          s.at,
          forget,
        );
      });
      await this.#schedule(earliest);
      return { allowed: true, retryAfterMs: 0 };
    });
  }

  async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM buckets WHERE forget <= ?", Date.now());
    this.#alarmAt = null;
    const next = sql.exec<{ m: number | null }>("SELECT MIN(forget) AS m FROM buckets").one().m;
    if (next !== null) await this.#schedule(next);
  }

  async #schedule(at: number): Promise<void> {
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}
