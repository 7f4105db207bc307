// The change feed of a Durable Object store (approvals, incidents: docs/governance.md "Approvals",
// docs/incidents.md): a subclass calls `changed(id)` inside the synchronous SQL step that creates or
// replaces the record, so the change lands with it or not at all. The cursor is the AUTOINCREMENT
// seq: never reused, so it still orders after all earlier ones once the oldest are trimmed.
import { capture, type Result, unwrap } from "./rpc";
import type { DurableObjectState, Stub } from "./runtime";
import { SqlObject } from "./sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL);`;

export interface ChangeRow {
  seq: number;
  id: string;
}

export abstract class ChangeLogObject<Env = unknown> extends SqlObject<Env> {
  readonly #keep: number;

  /** `keep`: the newest changes kept (the port's MAX_*_CHANGES); older ones are dropped. */
  constructor(ctx: DurableObjectState, env: Env, schema: string, keep: number) {
    super(ctx, env, schema + SCHEMA);
    this.#keep = keep;
  }

  protected changed(id: string): void {
    this.sql.exec("INSERT INTO changes (id) VALUES (?)", id);
    this.sql.exec(
      "DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ?",
      this.#keep,
    );
  }

  changes(after: number, limit: number): Promise<Result<ChangeRow[]>> {
    return capture(() =>
      this.sql
        .exec<{ seq: number; id: string }>(
          "SELECT seq, id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
          after,
          limit,
        )
        .toArray(),
    );
  }

  changeCursor(): Promise<Result<number>> {
    return capture(
      () => this.sql.exec<{ m: number | null }>("SELECT MAX(seq) AS m FROM changes").one().m ?? 0,
    );
  }
}

type ChangeLogStub = Pick<Stub<ChangeLogObject>, "changes" | "changeCursor">;

/**
 * The adapter's side of the port's `changes`, after the port's own checks: cursors are decimal
 * seqs, so a Redis stream id (`ms-seq`, another adapter's cursor) is refused. `store` names the
 * store in the error ("approval store").
 */
export async function readChanges(
  log: ChangeLogStub,
  after: string,
  limit: number,
  store: string,
): Promise<{ cursor: string; id: string }[]> {
  if (after.includes("-")) throw new RangeError(`${store}: bad cursor`);
  return unwrap(await log.changes(Number(after), limit)).map((c) => ({
    cursor: String(c.seq),
    id: c.id,
  }));
}

export async function readChangeCursor(log: ChangeLogStub): Promise<string> {
  return String(unwrap(await log.changeCursor()));
}
