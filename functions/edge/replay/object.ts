// ReplayObject: the nonces of one request keyid (one object per keyid, so replay checks scale with
// the number of clients, not through one hot object). check-and-store is a synchronous SQL read and
// write: atomic within the object. An expired row counts as absent at once; an alarm deletes
// expired rows in the background so storage stays bounded by the live window.
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = "CREATE TABLE IF NOT EXISTS nonces (k TEXT PRIMARY KEY, exp INTEGER NOT NULL);";

export class ReplayObject extends SqlObject {
  #alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  /** True if (keyid, nonce) was not live and is now stored until now + ttlMs. */
  checkAndStore(keyid: string, nonce: string, ttlMs: number): Promise<Result<boolean>> {
    return capture(async () => {
      if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError("ttlSeconds must be > 0");
      const sql = this.ctx.storage.sql;
      const now = Date.now();
      // JSON array keys: no separator can make two (keyid, nonce) pairs collide.
      const k = JSON.stringify([keyid, nonce]);
      const row = sql.exec<{ exp: number }>("SELECT exp FROM nonces WHERE k = ?", k).toArray()[0];
      if (row && row.exp > now) return false;
      const exp = now + Math.ceil(ttlMs);
      sql.exec("INSERT OR REPLACE INTO nonces (k, exp) VALUES (?, ?)", k, exp);
      await this.#schedule(exp);
      return true;
    });
  }

  async alarm(): Promise<void> {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM nonces WHERE exp <= ?", Date.now());
    this.#alarmAt = null;
    const next = sql.exec<{ m: number | null }>("SELECT MIN(exp) AS m FROM nonces").one().m;
    if (next !== null) await this.#schedule(next);
  }

  async #schedule(at: number): Promise<void> {
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (this.#alarmAt !== null && this.#alarmAt <= at) return;
    this.#alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}
