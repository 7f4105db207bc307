// ArchiveObject: the edge's audit archive (docs/audit.md "Retention"), the NDJSON export of each
// pruned prefix in parts (a DO RPC carries a bounded payload), moved under its name in one
// transaction before the prune. The sink that fills it is ./archive.ts.
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS archive_parts (name TEXT NOT NULL, part INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY (name, part));
CREATE TABLE IF NOT EXISTS archive_pending (part INTEGER PRIMARY KEY, text TEXT NOT NULL);`;

export class ArchiveObject extends SqlObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  /** Stages one part of the archive being written (a new archive starts at part 0). */
  stage(part: number, text: string): Promise<Result<void>> {
    return capture(() => {
      if (part === 0) this.sql.exec("DELETE FROM archive_pending");
      this.sql.exec("INSERT INTO archive_pending (part, text) VALUES (?, ?)", part, text);
    });
  }

  /** Moves the staged parts under `name` (a `-n` suffix if taken: never over an archive). */
  commit(name: string, parts: number): Promise<Result<string>> {
    return capture(() =>
      this.ctx.storage.transactionSync(() => {
        const staged = this.sql
          .exec<{ n: number }>("SELECT COUNT(*) AS n FROM archive_pending")
          .one().n;
        if (staged !== parts) throw new Error(`archive holds ${staged} of ${parts} parts`);
        let final = name;
        for (let n = 1; this.#exists(final); n++) final = `${name}-${n}`;
        this.sql.exec(
          "INSERT INTO archive_parts (name, part, text) SELECT ?, part, text FROM archive_pending",
          final,
        );
        this.sql.exec("DELETE FROM archive_pending");
        return final;
      }),
    );
  }

  #exists(name: string): boolean {
    return (
      this.sql.exec("SELECT 1 FROM archive_parts WHERE name = ? LIMIT 1", name).toArray().length > 0
    );
  }

  names(): Promise<Result<string[]>> {
    return capture(() =>
      this.sql
        .exec<{ name: string }>("SELECT DISTINCT name FROM archive_parts ORDER BY name")
        .toArray()
        .map((r) => r.name),
    );
  }

  /** One part of an archive; null past its end. */
  read(name: string, part: number): Promise<Result<string | null>> {
    return capture(
      () =>
        this.sql
          .exec<{ text: string }>(
            "SELECT text FROM archive_parts WHERE name = ? AND part = ?",
            name,
            part,
          )
          .toArray()[0]?.text ?? null,
    );
  }
}
