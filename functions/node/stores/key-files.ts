// SecretStore on the local filesystem: one encrypted key blob per file, `<dir>/<kid>.json`.
// Files are created 0600 in a 0700 directory, written to a temp file, fsynced, then hard-linked into
// place (atomic, and never overwrites an existing key). Reads refuse anything that is not a regular
// file owned by us with no group/other permissions, like ssh does with private keys.
import { randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { link, lstat, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { CryptoError } from "../../../shared/crypto";
import type { EncryptedKey } from "../../../shared/keys/at-rest";
import type { SecretStore } from "../../../shared/keys/provider";

const KID = /^[A-Za-z0-9_-]{43}$/;
const FILE = /^([A-Za-z0-9_-]{43})\.json$/;

function checkKid(kid: string): string {
  // The kid becomes a file name: only thumbprints, never a path.
  if (typeof kid !== "string" || !KID.test(kid))
    throw new CryptoError("invalid_input", "invalid kid");
  return kid;
}

const isErrno = (e: unknown, code: string): boolean =>
  typeof e === "object" && e !== null && (e as NodeJS.ErrnoException).code === code;

export class FileSecretStore implements SecretStore {
  #ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  async put(blob: EncryptedKey): Promise<void> {
    const kid = checkKid(blob.kid);
    await this.#ensureDir();
    const tmp = join(this.dir, `.${kid}.${randomUUID()}.tmp`);
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(blob, null, 2)}\n`, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, this.#path(kid));
    } catch (e) {
      if (isErrno(e, "EEXIST")) throw new CryptoError("invalid_key", `key ${kid} already stored`);
      throw e;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  async get(kid: string): Promise<EncryptedKey | undefined> {
    const path = this.#path(checkKid(kid));
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(path);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return undefined;
      throw e;
    }
    if (!st.isFile()) throw new CryptoError("invalid_key", `${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw new CryptoError(
        "invalid_key",
        `${path} is accessible by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    if (typeof process.getuid === "function" && st.uid !== process.getuid()) {
      throw new CryptoError("invalid_key", `${path} is owned by another user`);
    }
    try {
      // Shape and integrity are checked by decryptSecretKey (schema + AEAD over the header).
      return JSON.parse(await readFile(path, "utf8")) as EncryptedKey;
    } catch (cause) {
      throw new CryptoError("invalid_input", `${path} is not valid JSON`, { cause });
    }
  }

  async delete(kid: string): Promise<void> {
    try {
      await unlink(this.#path(checkKid(kid)));
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if (isErrno(e, "ENOENT")) return [];
      throw e;
    }
    return names.flatMap((n) => FILE.exec(n)?.[1] ?? []).sort();
  }

  #path(kid: string): string {
    return join(this.dir, `${kid}.json`);
  }

  #ensureDir(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const st = await lstat(this.dir);
      if (!st.isDirectory())
        throw new CryptoError("invalid_input", `${this.dir} is not a directory`);
      if ((st.mode & 0o022) !== 0) {
        throw new CryptoError("invalid_input", `${this.dir} is writable by others; chmod 700 it`);
      }
    })();
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }
}
