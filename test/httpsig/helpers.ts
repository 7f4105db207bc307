// WebCrypto Ed25519 implementations of the Signer / VerifyFn ports, for tests.
import { fromBase64Url } from "../../shared/encoding";
import type { ActiveKey, KeyLookup, KeyResolver, Signer, VerifyFn } from "../../shared/httpsig";

export async function signerFromJwk(kid: string, x: string, d: string): Promise<Signer> {
  const key = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "Ed25519", x, d },
    { name: "Ed25519" },
    false,
    ["sign"],
  );
  return {
    kid,
    publicKey: fromBase64Url(x),
    sign: async (m) => new Uint8Array(await crypto.subtle.sign("Ed25519", key, new Uint8Array(m))),
  };
}

export async function newSigner(kid: string): Promise<Signer> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  return signerFromJwk(kid, jwk.x!, jwk.d!);
}

export const webcryptoVerify: VerifyFn = async (publicKey, message, signature) => {
  const key = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(publicKey),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  return crypto.subtle.verify("Ed25519", key, new Uint8Array(signature), new Uint8Array(message));
};

/** A key registry in memory: active keys by kid, plus a revoked set. */
export function keyResolver(
  signers: readonly Signer[],
  revoked: readonly string[] = [],
): KeyResolver<ActiveKey> {
  return async (keyid): Promise<KeyLookup<ActiveKey>> => {
    if (revoked.includes(keyid)) return { status: "revoked", reason: "revoked" };
    const s = signers.find((x) => x.kid === keyid);
    return s ? { status: "active", publicKey: s.publicKey } : { status: "unknown" };
  };
}
