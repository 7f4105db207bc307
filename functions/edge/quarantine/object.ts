// QuarantineObject: every quarantine of the deployment in one object, so "one active quarantine
// per target" on place, and "lift once" on lift, are each one synchronous SQL step (a partial
// unique index backs the rule too). Records are kept: they are the history an auditor lists.
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS quarantines (id TEXT PRIMARY KEY, target TEXT NOT NULL, value TEXT NOT NULL, active INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS quarantines_active ON quarantines (target) WHERE active = 1;`;

export class QuarantineObject extends SqlObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  #activeValue(target: string): string | undefined {
    return this.sql
      .exec<{ value: string }>(
        "SELECT value FROM quarantines WHERE target = ? AND active = 1",
        target,
      )
      .toArray()[0]?.value;
  }

  /** null: stored; else the target's active record. */
  place(id: string, target: string, value: string): Promise<Result<string | null>> {
    return capture(() => {
      const cur = this.#activeValue(target);
      if (cur !== undefined) return cur;
      this.sql.exec(
        "INSERT INTO quarantines (id, target, value, active) VALUES (?, ?, ?, 1)",
        id,
        target,
        value,
      );
      return null;
    });
  }

  /** true: lifted now; false: it was not active. */
  lift(id: string, value: string): Promise<Result<boolean>> {
    return capture(() => {
      const n = this.sql.exec(
        "UPDATE quarantines SET value = ?, active = 0 WHERE id = ? AND active = 1",
        value,
        id,
      ).rowsWritten;
      return n === 1;
    });
  }

  get(id: string): Promise<Result<string | null>> {
    return capture(
      () =>
        this.sql
          .exec<{ value: string }>("SELECT value FROM quarantines WHERE id = ?", id)
          .toArray()[0]?.value ?? null,
    );
  }

  active(target: string): Promise<Result<string | null>> {
    return capture(() => this.#activeValue(target) ?? null);
  }

  list(limit: number, before: string | null): Promise<Result<string[]>> {
    return capture(() =>
      this.sql
        .exec<{ value: string }>(
          "SELECT value FROM quarantines WHERE (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
          before,
          before,
          limit,
        )
        .toArray()
        .map((r) => r.value),
    );
  }
}
