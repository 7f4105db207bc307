// ReportsObject: the edge's compliance reports (docs/compliance.md "Reports"), one object for the
// deployment, so a report generated in one isolate reads back from any other. Rows past
// REPORT_RETENTION_DAYS are deleted as new ones arrive (as the Redis store's TTL does on Node).
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS reports_expiry ON reports (expires_at);`;

export class ReportsObject extends SqlObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  put(id: string, value: string, expiresAt: number): Promise<Result<void>> {
    return capture(() => {
      this.sql.exec("DELETE FROM reports WHERE expires_at <= ?", Date.now());
      this.sql.exec(
        "INSERT OR REPLACE INTO reports (id, value, expires_at) VALUES (?, ?, ?)",
        id,
        value,
        expiresAt,
      );
    });
  }

  get(id: string): Promise<Result<string | null>> {
    return capture(
      () =>
        this.sql
          .exec<{ value: string }>(
            "SELECT value FROM reports WHERE id = ? AND expires_at > ?",
            id,
            Date.now(),
          )
          .toArray()[0]?.value ?? null,
    );
  }
}
