// Node-only: pick up the local dev admin key the API writes into its data directory.
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { fromBase64Url } from "../shared/encoding";
import { Sigil, type SigilOptions } from "./client";

const AdminKeyFile = z.object({
  kid: z.string().min(1),
  secretKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a base64url 32-byte seed"),
  publicJwk: z.looseObject({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: z.string() }),
});

export interface DevAdminKey {
  kid: string;
  secretKey: Uint8Array;
  publicJwk: z.infer<typeof AdminKeyFile>["publicJwk"];
  path: string;
}

/** Where the API keeps local state: SIGIL_DATA_DIR, else ./.sigil (docs/http-api.md). */
export function dataDir(): string {
  return resolve(process.env.SIGIL_DATA_DIR ?? ".sigil");
}

/** Reads a key file (`{kid, secretKey, publicJwk}`, the format of the local admin key). */
export async function loadKeyFile(path: string): Promise<DevAdminKey> {
  let raw: string;
  try {
    raw = await readFile(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the key file ${path}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${path} is not JSON`, { cause: e });
  }
  const parsed = AdminKeyFile.safeParse(json);
  if (!parsed.success) throw new Error(`${path} is malformed: ${z.prettifyError(parsed.error)}`);
  return { ...parsed.data, secretKey: fromBase64Url(parsed.data.secretKey), path };
}

export async function loadDevAdminKey(dir: string = dataDir()): Promise<DevAdminKey> {
  const path = join(dir, "admin-key.json");
  return loadKeyFile(path).catch((e: unknown) => {
    const cause = (e as { cause?: { code?: string } }).cause;
    if (cause?.code === "ENOENT")
      throw new Error(`no dev admin key at ${path} (start the API once to create it)`, { cause });
    throw e;
  });
}

/** A client signed with the local dev admin key. */
export async function devAdminClient(
  opts: Omit<SigilOptions, "keyId" | "signer" | "secretKey"> & { dataDir?: string },
): Promise<Sigil> {
  const key = await loadDevAdminKey(opts.dataDir);
  const { dataDir: _d, ...rest } = opts;
  return new Sigil({ ...rest, keyId: key.kid, secretKey: key.secretKey });
}
