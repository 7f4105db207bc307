// PinsObject: the TOFU pins of one SchemaPin domain (one object per domain). Values are the
// canonical JSON strings the port defines; compareAndSwap compares the whole stored string and
// writes in the same synchronous step, so concurrent verifiers cannot overwrite each other.
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = "CREATE TABLE IF NOT EXISTS pins (field TEXT PRIMARY KEY, value TEXT NOT NULL);";

export class PinsObject extends SqlObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  get(field: string): Promise<Result<string | null>> {
    return capture(() => this.#value(field) ?? null);
  }

  /** [field, value] pairs in field order. */
  list(): Promise<Result<[string, string][]>> {
    return capture(() =>
      this.sql
        .exec<{ field: string; value: string }>("SELECT field, value FROM pins ORDER BY field")
        .toArray()
        .map((r): [string, string] => [r.field, r.value]),
    );
  }

  compareAndSwap(
    field: string,
    expected: string | null,
    next: string | null,
  ): Promise<Result<boolean>> {
    return capture(() => {
      if ((this.#value(field) ?? null) !== expected) return false;
      if (next === null) this.sql.exec("DELETE FROM pins WHERE field = ?", field);
      else this.sql.exec("INSERT OR REPLACE INTO pins (field, value) VALUES (?, ?)", field, next);
      return true;
    });
  }

  delete(field: string): Promise<Result<boolean>> {
    return capture(() => this.sql.exec("DELETE FROM pins WHERE field = ?", field).rowsWritten > 0);
  }

  #value(field: string): string | undefined {
    return this.sql
      .exec<{ value: string }>("SELECT value FROM pins WHERE field = ?", field)
      .toArray()[0]?.value;
  }
}
