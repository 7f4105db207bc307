// The operator's key (docs/console.md "The key"): imported once from the key file the CLI uses
// ({kid, secretKey, publicJwk}, docs/cli.md), kept as a NON-extractable WebCrypto CryptoKey in
// IndexedDB. The seed never reaches storage; script on this origin can sign with the key but
// cannot read it. Without WebCrypto Ed25519 the seed signs through @noble/ed25519 for this tab
// only (never stored).
import * as ed from "@noble/ed25519";
import { z } from "zod";
import { equalBytes, fromBase64Url } from "../../shared/encoding";
import type { Signer } from "../../shared/httpsig";

const KeyFile = z.object({
  kid: z.string().min(1).max(256),
  secretKey: z.string().regex(/^[A-Za-z0-9_-]{43}$/, "a base64url 32-byte seed"),
  publicJwk: z.looseObject({
    kty: z.literal("OKP"),
    crv: z.literal("Ed25519"),
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  }),
});

interface StoredKey {
  kid: string;
  x: string;
  key: CryptoKey;
}

const DB = "sigil-console";
const STORE = "keys";
const ID = "operator";

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest): Promise<T> {
  const d = await db();
  try {
    return await new Promise<T>((resolve, reject) => {
      const r = f(d.transaction(STORE, mode).objectStore(STORE));
      r.onsuccess = () => resolve(r.result as T);
      r.onerror = () => reject(r.error);
    });
  } finally {
    d.close();
  }
}

function signerOf(kid: string, x: string, key: CryptoKey): Signer {
  return {
    kid,
    publicKey: fromBase64Url(x),
    sign: async (m) =>
      new Uint8Array(await crypto.subtle.sign("Ed25519", key, m as Uint8Array<ArrayBuffer>)),
  };
}

let sessionOnly: Signer | undefined;

/** The stored key's signer, if a key was imported. */
export async function loadSigner(): Promise<Signer | undefined> {
  if (sessionOnly) return sessionOnly;
  const s = await tx<StoredKey | undefined>("readonly", (st) => st.get(ID));
  return s ? signerOf(s.kid, s.x, s.key) : undefined;
}

/** Parses a key file and stores it non-extractable; the public half must match the seed. */
export async function importKeyFile(text: string): Promise<Signer> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("the key file is not JSON");
  }
  const parsed = KeyFile.safeParse(json);
  if (!parsed.success)
    throw new Error(`the key file is malformed: ${z.prettifyError(parsed.error)}`);
  const { kid, secretKey, publicJwk } = parsed.data;
  const seed = fromBase64Url(secretKey);
  const derived = await ed.getPublicKeyAsync(seed);
  if (!equalBytes(derived, fromBase64Url(publicJwk.x)))
    throw new Error("the key file's public key does not belong to its secret key");
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      "jwk",
      { kty: "OKP", crv: "Ed25519", x: publicJwk.x, d: secretKey },
      { name: "Ed25519" },
      false,
      ["sign"],
    );
  } catch {
    // No WebCrypto Ed25519: sign in script for this tab only, store nothing.
    sessionOnly = { kid, publicKey: derived, sign: (m) => ed.signAsync(m, seed) };
    return sessionOnly;
  }
  await tx("readwrite", (st) => st.put({ kid, x: publicJwk.x, key } satisfies StoredKey, ID));
  return signerOf(kid, publicJwk.x, key);
}

export async function forgetKey(): Promise<void> {
  sessionOnly = undefined;
  await tx("readwrite", (st) => st.delete(ID));
}
