// IncidentsObject: every incident of the deployment in one object, so the detection cursor's
// compare-and-set with its new incidents, and each record's revision compare-and-set, are one
// synchronous SQL step each: exactly one of two isolates commits a batch of findings.
import { MAX_INCIDENT_CHANGES } from "../../../shared/incidents/ports";
import { ChangeLogObject } from "../change-log";
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, rev INTEGER NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (id TEXT PRIMARY KEY, value TEXT NOT NULL);`;

export interface IncidentRow {
  id: string;
  rev: number;
  value: string;
}

export class IncidentsObject extends ChangeLogObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA, MAX_INCIDENT_CHANGES);
  }

  #meta(name: string): { rev: number; value: string } | undefined {
    return this.sql
      .exec<{ rev: number; value: string }>("SELECT rev, value FROM meta WHERE name = ?", name)
      .toArray()[0];
  }

  detection(): Promise<Result<{ cursor: number; state: string }>> {
    return capture(() => {
      const m = this.#meta("detection");
      return m ? { cursor: m.rev, state: m.value } : { cursor: 0, state: "" };
    });
  }

  advance(
    expected: number,
    cursor: number,
    state: string,
    rows: [string, string][],
    swaps: [string, number, string][],
  ): Promise<Result<boolean>> {
    return capture(() =>
      this.ctx.storage.transactionSync(() => {
        if ((this.#meta("detection")?.rev ?? 0) !== expected) return false;
        for (const [id, rev] of swaps) {
          const cur = this.sql
            .exec<{ rev: number }>("SELECT rev FROM incidents WHERE id = ?", id)
            .toArray()[0];
          if (cur?.rev !== rev) return false;
        }
        for (const [id] of rows)
          if (this.sql.exec("SELECT 1 FROM incidents WHERE id = ?", id).toArray().length > 0)
            throw new RangeError(`incident ${id} exists`);
        this.sql.exec(
          "INSERT OR REPLACE INTO meta (name, rev, value) VALUES ('detection', ?, ?)",
          cursor,
          state,
        );
        for (const [id, value] of rows) {
          this.sql.exec("INSERT INTO incidents (id, rev, value) VALUES (?, 1, ?)", id, value);
          this.changed(id);
        }
        for (const [id, rev, value] of swaps) {
          this.sql.exec("UPDATE incidents SET rev = ?, value = ? WHERE id = ?", rev + 1, value, id);
          this.changed(id);
        }
        return true;
      }),
    );
  }

  get(id: string): Promise<Result<IncidentRow | null>> {
    return capture(
      () =>
        this.sql
          .exec<{ id: string; rev: number; value: string }>(
            "SELECT id, rev, value FROM incidents WHERE id = ?",
            id,
          )
          .toArray()[0] ?? null,
    );
  }

  swap(id: string, rev: number, value: string): Promise<Result<boolean>> {
    return capture(() => {
      const cur = this.sql
        .exec<{ rev: number }>("SELECT rev FROM incidents WHERE id = ?", id)
        .toArray()[0];
      if (!cur || cur.rev !== rev) return false;
      this.sql.exec("UPDATE incidents SET rev = ?, value = ? WHERE id = ?", rev + 1, value, id);
      this.changed(id);
      return true;
    });
  }

  list(limit: number, before: string | null): Promise<Result<IncidentRow[]>> {
    return capture(() =>
      this.sql
        .exec<{ id: string; rev: number; value: string }>(
          "SELECT id, rev, value FROM incidents WHERE (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
          before,
          before,
          limit,
        )
        .toArray(),
    );
  }

  putEvidence(id: string, value: string): Promise<Result<boolean>> {
    return capture(() => {
      if (this.sql.exec("SELECT 1 FROM evidence WHERE id = ?", id).toArray().length > 0)
        return false;
      this.sql.exec("INSERT INTO evidence (id, value) VALUES (?, ?)", id, value);
      return true;
    });
  }

  evidence(id: string): Promise<Result<string | null>> {
    return capture(
      () =>
        this.sql.exec<{ value: string }>("SELECT value FROM evidence WHERE id = ?", id).toArray()[0]
          ?.value ?? null,
    );
  }

  emergency(): Promise<Result<{ rev: number; value: string } | null>> {
    return capture(() => this.#meta("emergency") ?? null);
  }

  swapEmergency(rev: number, value: string): Promise<Result<boolean>> {
    return capture(() => {
      if ((this.#meta("emergency")?.rev ?? 0) !== rev) return false;
      this.sql.exec(
        "INSERT OR REPLACE INTO meta (name, rev, value) VALUES ('emergency', ?, ?)",
        rev + 1,
        value,
      );
      return true;
    });
  }
}
