// KeysObject: the key registry and the software provider's encrypted private keys, in one SQLite-
// backed Durable Object. A DO runs one event at a time and SQL calls are synchronous, so each
// method below reads, applies the shared pure transition (newRecord / rotation / revocation) and
// writes with no await in between: concurrent rotations of one key cannot both win, without CAS.
import { CryptoError } from "../../../shared/crypto";
import { toBase64Url } from "../../../shared/encoding";
import type { EncryptedKey } from "../../../shared/keys/at-rest";
import {
  fromStored,
  type KeyRecord,
  KeyRegistryError,
  type KeyRole,
  newRecord,
  type RegisterKeyInput,
  type RevokeOptions,
  type RotateOptions,
  revocation,
  rotation,
  type StoredKeyRecord,
  toStored,
} from "../../../shared/keys/record";
import {
  type ActiveSubject,
  checkActive,
  checkHash,
  checkInstant,
  checkRef,
  parseRecord,
  type SubjectRecord,
} from "../../../shared/subjects";
import { capture, type Result } from "../rpc";
import type { DurableObjectState } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS keys (kid TEXT PRIMARY KEY, role TEXT NOT NULL, created_at INTEGER NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS keys_by_role ON keys (role, created_at, kid);
CREATE TABLE IF NOT EXISTS secrets (kid TEXT PRIMARY KEY, blob TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL, expires INTEGER);
CREATE TABLE IF NOT EXISTS subjects (hash TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subject_keys (ref TEXT PRIMARY KEY, wrapped TEXT NOT NULL);`;

export class KeysObject extends SqlObject {
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env, SCHEMA);
  }

  // ---------------------------------------------------------------- registry

  register(input: RegisterKeyInput): Promise<Result<StoredKeyRecord>> {
    return capture(() => {
      const r = newRecord(input);
      if (this.#row(r.kid)) throw new KeyRegistryError("exists", `key ${r.kid} already registered`);
      this.#write(r, true);
      return toStored(r);
    });
  }

  get(kid: string): Promise<Result<StoredKeyRecord | null>> {
    return capture(() => {
      const json = this.#row(kid);
      return json === undefined ? null : toStored(this.#parse(kid, json));
    });
  }

  list(role?: KeyRole): Promise<Result<StoredKeyRecord[]>> {
    return capture(() => {
      const rows =
        role === undefined
          ? this.sql
              .exec<{ kid: string; json: string }>(
                "SELECT kid, json FROM keys ORDER BY created_at, kid",
              )
              .toArray()
          : this.sql
              .exec<{ kid: string; json: string }>(
                "SELECT kid, json FROM keys WHERE role = ? ORDER BY created_at, kid",
                role,
              )
              .toArray();
      return rows.map((r) => {
        const rec = this.#parse(r.kid, r.json);
        if (role !== undefined && rec.role !== role)
          throw new KeyRegistryError("invalid", "key index does not match its records");
        return toStored(rec);
      });
    });
  }

  rotate(
    kid: string,
    newPublicKey: Uint8Array,
    now: number,
    opts?: RotateOptions,
  ): Promise<Result<StoredKeyRecord>> {
    return capture(() => {
      const [retired, next] = rotation(this.#require(kid), newPublicKey, now, opts);
      if (this.#row(next.kid))
        throw new KeyRegistryError("exists", `key ${next.kid} already registered`);
      this.ctx.storage.transactionSync(() => {
        this.#write(retired, false);
        this.#write(next, true);
      });
      return toStored(next);
    });
  }

  revoke(kid: string, now: number, opts?: RevokeOptions): Promise<Result<StoredKeyRecord>> {
    return capture(() => {
      const r = revocation(this.#require(kid), now, opts);
      this.#write(r, false);
      return toStored(r);
    });
  }

  #row(kid: string): string | undefined {
    const rows = this.sql
      .exec<{ json: string }>("SELECT json FROM keys WHERE kid = ?", kid)
      .toArray();
    return rows[0]?.json;
  }

  #require(kid: string): KeyRecord {
    const json = this.#row(kid);
    if (json === undefined) throw new KeyRegistryError("not_found", `unknown key ${kid}`);
    return this.#parse(kid, json);
  }

  #parse(kid: string, json: string): KeyRecord {
    let value: unknown;
    try {
      value = JSON.parse(json);
    } catch {
      throw new KeyRegistryError("invalid", "stored key record is not JSON");
    }
    const r = fromStored(value);
    if (r.kid !== kid)
      throw new KeyRegistryError("invalid", "stored key record is under the wrong kid");
    return r;
  }

  #write(r: KeyRecord, insert: boolean): void {
    const json = JSON.stringify(toStored(r));
    if (insert) {
      this.sql.exec(
        "INSERT INTO keys (kid, role, created_at, json) VALUES (?, ?, ?, ?)",
        r.kid,
        r.role,
        r.createdAt,
        json,
      );
    } else {
      this.sql.exec("UPDATE keys SET json = ? WHERE kid = ?", json, r.kid);
    }
  }

  // ---------------------------------------------------------------- secret store

  putSecret(blob: EncryptedKey): Promise<Result<void>> {
    return capture(() => {
      if (typeof blob?.kid !== "string" || blob.kid.length === 0)
        throw new CryptoError("invalid_input", "invalid kid");
      const exists =
        this.sql.exec("SELECT 1 FROM secrets WHERE kid = ?", blob.kid).toArray().length > 0;
      if (exists) throw new CryptoError("invalid_key", `key ${blob.kid} already stored`);
      this.sql.exec(
        "INSERT INTO secrets (kid, blob) VALUES (?, ?)",
        blob.kid,
        JSON.stringify(blob),
      );
    });
  }

  getSecret(kid: string): Promise<Result<EncryptedKey | null>> {
    return capture(() => {
      const row = this.sql
        .exec<{ blob: string }>("SELECT blob FROM secrets WHERE kid = ?", kid)
        .toArray()[0];
      // Shape and integrity are checked by decryptSecretKey (schema + AEAD over the header).
      return row === undefined ? null : (JSON.parse(row.blob) as EncryptedKey);
    });
  }

  deleteSecret(kid: string): Promise<Result<void>> {
    return capture(() => {
      this.sql.exec("DELETE FROM secrets WHERE kid = ?", kid);
    });
  }

  listSecrets(): Promise<Result<string[]>> {
    return capture(() =>
      this.sql
        .exec<{ kid: string }>("SELECT kid FROM secrets ORDER BY kid")
        .toArray()
        .map((r) => r.kid),
    );
  }

  /**
   * Local dev only (no SIGIL_KEY_PASSPHRASE): a random secret created once and kept here, like Node
   * keeps master.secret in its data dir. Next to the blobs it protects it adds no confidentiality
   * against whoever reads this storage; production sets SIGIL_KEY_PASSPHRASE as a Worker secret.
   */
  masterSecret(): Promise<Result<string>> {
    return capture(() => {
      const row = this.sql
        .exec<{ v: string }>("SELECT v FROM meta WHERE k = 'master-secret'")
        .toArray()[0];
      if (row) return row.v;
      const secret = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
      this.sql.exec("INSERT INTO meta (k, v) VALUES ('master-secret', ?)", secret);
      return secret;
    });
  }

  /**
   * A short lease, so that of several isolates composing at once only one creates the service key.
   * True if `holder` has (or now takes) the lease named `name`.
   */
  lease(name: string, holder: string, ttlMs: number): Promise<Result<boolean>> {
    return capture(() => {
      const k = `lease:${name}`;
      const now = Date.now();
      const row = this.sql
        .exec<{ v: string; expires: number }>("SELECT v, expires FROM meta WHERE k = ?", k)
        .toArray()[0];
      if (row && row.v !== holder && row.expires > now) return false;
      this.sql.exec(
        "INSERT OR REPLACE INTO meta (k, v, expires) VALUES (?, ?, ?)",
        k,
        holder,
        now + ttlMs,
      );
      return true;
    });
  }

  // ---------------------------------------------------------------- data subjects
  // The SubjectKeyStore (docs/data-subjects.md): here because the subject keys are wrapped by the
  // same key hierarchy as the private keys above. Each method runs with no await inside, so a
  // create racing an erasure cannot bring a key back.

  subjectCreateOrGet(hash: string, candidate: ActiveSubject): Promise<Result<SubjectRecord>> {
    return capture(() => {
      checkHash(hash);
      const c = checkActive(candidate);
      const had = this.#subject(hash);
      if (had) return had;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("INSERT INTO subjects (hash, json) VALUES (?, ?)", hash, JSON.stringify(c));
        this.sql.exec("INSERT INTO subject_keys (ref, wrapped) VALUES (?, ?)", c.ref, c.wrappedKey);
      });
      return c;
    });
  }

  subjectGet(hash: string): Promise<Result<SubjectRecord | null>> {
    return capture(() => this.#subject(checkHash(hash)) ?? null);
  }

  subjectWrappedKey(ref: string): Promise<Result<string | null>> {
    return capture(() => {
      const row = this.sql
        .exec<{ wrapped: string }>("SELECT wrapped FROM subject_keys WHERE ref = ?", checkRef(ref))
        .toArray()[0];
      return row?.wrapped ?? null;
    });
  }

  subjectErase(hash: string, erasedAt: string): Promise<Result<SubjectRecord | null>> {
    return capture(() => {
      checkHash(hash);
      const tomb = JSON.stringify({ state: "erased", erasedAt: checkInstant(erasedAt) });
      const had = this.#subject(hash);
      if (had?.state === "erased") return had;
      this.ctx.storage.transactionSync(() => {
        if (had) this.sql.exec("DELETE FROM subject_keys WHERE ref = ?", had.ref);
        this.sql.exec("INSERT OR REPLACE INTO subjects (hash, json) VALUES (?, ?)", hash, tomb);
      });
      return had ?? null;
    });
  }

  #subject(hash: string): SubjectRecord | undefined {
    const row = this.sql
      .exec<{ json: string }>("SELECT json FROM subjects WHERE hash = ?", hash)
      .toArray()[0];
    return parseRecord(row?.json);
  }
}
