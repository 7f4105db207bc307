// WebCrypto Ed25519 Signer / VerifyFn / key resolver for the audit tests (the real ones come from
// shared/crypto). Imported CryptoKeys are cached per public key so verification stays fast.
import { webcrypto } from "node:crypto";
import type { AuditKeyResolver, Signer, VerifyFn } from "../../../shared/audit";
import { concatBytes, fromBase64Url, fromHex, toHex } from "../../../shared/encoding";

const subtle = webcrypto.subtle;
const PKCS8_ED25519_PREFIX = fromHex("302e020100300506032b657004220420");

export async function webcryptoSigner(seed: Uint8Array, kid = "audit-1"): Promise<Signer> {
  if (seed.length !== 32) throw new Error("seed must be 32 bytes");
  const pkcs8 = concatBytes(PKCS8_ED25519_PREFIX, seed);
  const extractable = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await subtle.exportKey("jwk", extractable);
  const publicKey = fromBase64Url(jwk.x!);
  const privateKey = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
  return {
    kid,
    publicKey,
    async sign(message: Uint8Array) {
      return new Uint8Array(await subtle.sign({ name: "Ed25519" }, privateKey, message));
    },
  };
}

export const seedOf = (n: number): Uint8Array => new Uint8Array(32).fill(n);

export function webcryptoVerify(): VerifyFn {
  const cache = new Map<string, Promise<webcrypto.CryptoKey>>();
  return async (publicKey, message, signature) => {
    const id = toHex(publicKey);
    let key = cache.get(id);
    if (!key) {
      key = subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      cache.set(id, key);
    }
    try {
      return await subtle.verify({ name: "Ed25519" }, await key, signature, message);
    } catch {
      return false;
    }
  };
}

export interface TestKey {
  kid: string;
  publicKey: Uint8Array;
  validFrom?: string;
  validUntil?: string;
}

export function staticKeys(keys: TestKey[]): AuditKeyResolver {
  return async (kid, timestamp) => {
    const k = keys.find((x) => x.kid === kid);
    if (!k) return undefined;
    const validAt =
      (k.validFrom === undefined || timestamp >= k.validFrom) &&
      (k.validUntil === undefined || timestamp < k.validUntil);
    return { publicKey: k.publicKey, validAt };
  };
}
