import { chmod, lstat, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSecretStore } from "../../functions/node/stores/key-files";
import { CryptoError, generateEd25519KeyPair, verifyEd25519 } from "../../shared/crypto";
import { utf8 } from "../../shared/encoding";
import { encryptSecretKey, MIN_SCRYPT_N, SoftwareKeyProvider } from "../../shared/keys";

const FAST = { N: MIN_SCRYPT_N, r: 8, p: 1 };
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "sigil-keyfiles-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function blob() {
  const { secretKey } = await generateEd25519KeyPair();
  return encryptSecretKey({ crv: "Ed25519", secretKey }, "pw", FAST);
}

describe("FileSecretStore", () => {
  it("writes 0600 files in a 0700 directory and reads them back", async () => {
    const dir = join(root, "a", "keys");
    const store = new FileSecretStore(dir);
    const b = await blob();
    await store.put(b);
    expect((await lstat(dir)).mode & 0o777).toBe(0o700);
    expect((await lstat(join(dir, `${b.kid}.json`))).mode & 0o777).toBe(0o600);
    expect(await store.get(b.kid)).toEqual(b);
    expect(await store.list()).toEqual([b.kid]);
    expect(await store.get((await blob()).kid)).toBeUndefined();
    await store.delete(b.kid);
    await store.delete(b.kid); // idempotent
    expect(await store.list()).toEqual([]);
  });

  it("never overwrites a key and leaves no temp files", async () => {
    const store = new FileSecretStore(join(root, "b"));
    const b = await blob();
    await store.put(b);
    await expect(store.put({ ...b, data: "AAAA" })).rejects.toBeInstanceOf(CryptoError);
    expect(JSON.parse(await readFile(join(root, "b", `${b.kid}.json`), "utf8"))).toEqual(b);
    expect(await store.list()).toEqual([b.kid]);
  });

  it("refuses files readable by others, symlinks and path-like kids", async () => {
    const dir = join(root, "c");
    const store = new FileSecretStore(dir);
    const b = await blob();
    await store.put(b);
    await chmod(join(dir, `${b.kid}.json`), 0o644);
    await expect(store.get(b.kid)).rejects.toThrow(/chmod 600/);
    const c = await blob();
    await writeFile(join(root, "outside.json"), JSON.stringify(c), { mode: 0o600 });
    await symlink(join(root, "outside.json"), join(dir, `${c.kid}.json`));
    await expect(store.get(c.kid)).rejects.toBeInstanceOf(CryptoError);
    for (const kid of ["../x", "a/b", "", `${b.kid}/..`]) {
      await expect(store.get(kid)).rejects.toBeInstanceOf(CryptoError);
    }
  });

  it("refuses a group/world-writable key directory", async () => {
    const dir = join(root, "d");
    const store = new FileSecretStore(dir);
    await store.put(await blob());
    await chmod(dir, 0o777);
    await expect(new FileSecretStore(dir).put(await blob())).rejects.toThrow(/chmod 700/);
  });

  it("backs the software key provider across restarts", async () => {
    const dir = join(root, "e");
    const p1 = new SoftwareKeyProvider({
      secret: "pass",
      store: new FileSecretStore(dir),
      scrypt: FAST,
    });
    const { kid, publicKey } = await p1.generateSigningKey();
    const p2 = new SoftwareKeyProvider({ secret: "pass", store: new FileSecretStore(dir) });
    const sig = await (await p2.getSigner(kid)).sign(utf8("after restart"));
    expect(await verifyEd25519(publicKey, utf8("after restart"), sig)).toBe(true);
  });
});
