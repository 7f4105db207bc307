// PolicyObject: the versioned policy store (one object). Each mutation is synchronous SQL inside
// transactionSync, so it is atomic and strictly ordered; snapshot() reads the current documents and
// the revision in one synchronous step, which is one consistent read.
import {
  assertPolicyName,
  type NewVersion,
  type PolicyRecord,
  type PolicySnapshot,
  type PolicyVersionInfo,
} from "../../../shared/policy";
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS versions (name TEXT NOT NULL, version INTEGER NOT NULL, source TEXT NOT NULL,
  sha256 TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, cur INTEGER, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);`;

type VersionRow = { version: number; source: string; sha256: string; created_at: string };

const record = (name: string, r: VersionRow): PolicyRecord => ({
  name,
  version: r.version,
  source: r.source,
  sha256: r.sha256,
  createdAt: r.created_at,
});

export class PolicyObject extends SqlObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  put(name: string, v: NewVersion): Promise<Result<number>> {
    return capture(() => {
      assertPolicyName(name);
      if (
        typeof v?.source !== "string" ||
        !/^[0-9a-f]{64}$/.test(v.sha256) ||
        typeof v.createdAt !== "string"
      ) {
        throw new TypeError("invalid policy version");
      }
      return this.ctx.storage.transactionSync(() => {
        const last = this.#entry(name)?.last ?? 0;
        const n = last + 1;
        this.sql.exec(
          "INSERT INTO versions (name, version, source, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
          name,
          n,
          v.source,
          v.sha256,
          v.createdAt,
        );
        this.sql.exec(
          "INSERT OR REPLACE INTO names (name, cur, last) VALUES (?, ?, ?)",
          name,
          n,
          n,
        );
        this.#bump();
        return n;
      });
    });
  }

  get(name: string, version?: number): Promise<Result<PolicyRecord | null>> {
    return capture(() => {
      assertPolicyName(name);
      const n = version ?? this.#entry(name)?.current ?? null;
      if (n === null || !Number.isSafeInteger(n) || n < 1) return null;
      const row = this.#version(name, n);
      return row ? record(name, row) : null;
    });
  }

  versions(name: string): Promise<Result<PolicyVersionInfo[]>> {
    return capture(() => {
      assertPolicyName(name);
      const current = this.#entry(name)?.current ?? null;
      return this.sql
        .exec<VersionRow>(
          "SELECT version, source, sha256, created_at FROM versions WHERE name = ? ORDER BY version",
          name,
        )
        .toArray()
        .map((r) => ({
          version: r.version,
          sha256: r.sha256,
          createdAt: r.created_at,
          current: r.version === current,
        }));
    });
  }

  setCurrent(name: string, version: number): Promise<Result<boolean>> {
    return capture(() => {
      assertPolicyName(name);
      if (!Number.isSafeInteger(version) || version < 1 || !this.#version(name, version))
        return false;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE names SET cur = ? WHERE name = ?", version, name);
        this.#bump();
      });
      return true;
    });
  }

  delete(name: string): Promise<Result<boolean>> {
    return capture(() => {
      assertPolicyName(name);
      const e = this.#entry(name);
      if (!e || e.current === null) return false;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE names SET cur = NULL WHERE name = ?", name);
        this.#bump();
      });
      return true;
    });
  }

  snapshot(): Promise<Result<PolicySnapshot>> {
    return capture(() => {
      const rows = this.sql
        .exec<VersionRow & { name: string }>(
          `SELECT n.name AS name, v.version AS version, v.source AS source, v.sha256 AS sha256, v.created_at AS created_at
           FROM names n JOIN versions v ON v.name = n.name AND v.version = n.cur
           WHERE n.cur IS NOT NULL ORDER BY n.name`,
        )
        .toArray();
      return { revision: this.#revision(), documents: rows.map((r) => record(r.name, r)) };
    });
  }

  revision(): Promise<Result<number>> {
    return capture(() => this.#revision());
  }

  #entry(name: string): { current: number | null; last: number } | undefined {
    const row = this.sql
      .exec<{ cur: number | null; last: number }>(
        "SELECT cur, last FROM names WHERE name = ?",
        name,
      )
      .toArray()[0];
    return row && { current: row.cur, last: row.last };
  }

  #version(name: string, n: number): VersionRow | undefined {
    return this.sql
      .exec<VersionRow>(
        "SELECT version, source, sha256, created_at FROM versions WHERE name = ? AND version = ?",
        name,
        n,
      )
      .toArray()[0];
  }

  #revision(): number {
    return this.sql.exec<{ v: number }>("SELECT v FROM meta WHERE k = 'rev'").toArray()[0]?.v ?? 0;
  }

  #bump(): void {
    this.sql.exec(
      "INSERT INTO meta (k, v) VALUES ('rev', 1) ON CONFLICT (k) DO UPDATE SET v = v + 1",
    );
  }
}
