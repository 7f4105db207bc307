// ApprovalsObject: every approval of the deployment in one object, so the binding check on create
// and the revision compare-and-set on swap are each one synchronous SQL step: atomic, and exactly
// one of two concurrent answers lands. Rows past their retention are deleted as new ones arrive.
import { MAX_APPROVAL_CHANGES } from "../../../shared/approvals/ports";
import { ChangeLogObject } from "../change-log";
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, value TEXT NOT NULL, retain_until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS approvals_retain ON approvals (retain_until);
CREATE TABLE IF NOT EXISTS bindings (binding TEXT PRIMARY KEY, id TEXT NOT NULL);`;

export interface ApprovalRow {
  id: string;
  rev: number;
  value: string;
}

export class ApprovalsObject extends ChangeLogObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA, MAX_APPROVAL_CHANGES);
  }

  #live(id: string): ApprovalRow | undefined {
    return this.sql
      .exec<{ id: string; rev: number; value: string }>(
        "SELECT id, rev, value FROM approvals WHERE id = ? AND retain_until > ?",
        id,
        Date.now(),
      )
      .toArray()[0];
  }

  /** null: created; else the id the binding points at. */
  create(
    id: string,
    binding: string,
    value: string,
    replacing: string | null,
    retainUntil: number,
  ): Promise<Result<string | null>> {
    return capture(() => {
      const bound = this.sql
        .exec<{ id: string }>("SELECT id FROM bindings WHERE binding = ?", binding)
        .toArray()[0]?.id;
      if (bound !== undefined && this.#live(bound) && bound !== replacing) return bound;
      this.sql.exec(
        "DELETE FROM bindings WHERE id IN (SELECT id FROM approvals WHERE retain_until <= ?)",
        Date.now(),
      );
      this.sql.exec("DELETE FROM approvals WHERE retain_until <= ?", Date.now());
      if (this.#live(id)) throw new RangeError(`approval ${id} exists`);
      this.sql.exec(
        "INSERT INTO approvals (id, rev, value, retain_until) VALUES (?, 1, ?, ?)",
        id,
        value,
        retainUntil,
      );
      this.sql.exec("INSERT OR REPLACE INTO bindings (binding, id) VALUES (?, ?)", binding, id);
      this.changed(id);
      return null;
    });
  }

  byBinding(binding: string): Promise<Result<string | null>> {
    return capture(() => {
      const id = this.sql
        .exec<{ id: string }>("SELECT id FROM bindings WHERE binding = ?", binding)
        .toArray()[0]?.id;
      return id !== undefined && this.#live(id) ? id : null;
    });
  }

  get(id: string): Promise<Result<ApprovalRow | null>> {
    return capture(() => this.#live(id) ?? null);
  }

  swap(id: string, rev: number, value: string, retainUntil: number): Promise<Result<boolean>> {
    return capture(() => {
      const cur = this.#live(id);
      if (!cur || cur.rev !== rev) return false;
      this.sql.exec(
        "UPDATE approvals SET rev = ?, value = ?, retain_until = ? WHERE id = ?",
        rev + 1,
        value,
        retainUntil,
        id,
      );
      this.changed(id);
      return true;
    });
  }

  list(limit: number, before: string | null): Promise<Result<ApprovalRow[]>> {
    return capture(() =>
      this.sql
        .exec<{ id: string; rev: number; value: string }>(
          "SELECT id, rev, value FROM approvals WHERE retain_until > ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
          Date.now(),
          before,
          before,
          limit,
        )
        .toArray(),
    );
  }
}
