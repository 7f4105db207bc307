// RFC 8037 JWKs for OKP keys (Ed25519 signing, X25519 key agreement). Imports are schema-checked
// with zod and fail closed with a typed error; keys are checked, not just decoded.
import { x25519 } from "@noble/curves/ed25519.js";
import { z } from "zod";
import { fromBase64Url, toBase64Url } from "../encoding";
import { ed25519PublicKeyFromSeed, isValidEd25519PublicKey } from "./ed25519";
import { assertBytes, CryptoError } from "./errors";
import { ed25519Kid, type OkpCurve, okpThumbprint } from "./kid";

export interface JsonWebKeyOkp {
  kty: "OKP";
  crv: OkpCurve;
  x: string;
  d?: string;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  [member: string]: unknown;
}

const b64url32 = z
  .string()
  .length(43)
  .regex(/^[A-Za-z0-9_-]+$/);

const okpJwkSchema = z.looseObject({
  kty: z.literal("OKP"),
  crv: z.enum(["Ed25519", "X25519"]),
  x: b64url32,
  d: b64url32.optional(),
  kid: z.string().min(1).max(256).optional(),
  alg: z.string().optional(),
  use: z.string().optional(),
  key_ops: z.array(z.string()).optional(),
});

const RESERVED = new Set(["kty", "crv", "x", "d"]);

/** Public Ed25519 JWK; `kid` defaults to the RFC 7638 thumbprint, `extra` adds members (never key material). */
export function publicJwk(publicKey: Uint8Array, extra?: Record<string, unknown>): JsonWebKeyOkp {
  assertBytes(publicKey, 32, "Ed25519 public key");
  for (const k of Object.keys(extra ?? {})) {
    if (RESERVED.has(k))
      throw new CryptoError("invalid_input", `publicJwk: extra may not set "${k}"`);
  }
  return {
    kid: ed25519Kid(publicKey),
    ...extra,
    kty: "OKP",
    crv: "Ed25519",
    x: toBase64Url(publicKey),
  };
}

export interface OkpKey {
  crv: OkpCurve;
  publicKey: Uint8Array;
  secretKey?: Uint8Array;
  kid?: string;
}

function parse(jwk: unknown): z.infer<typeof okpJwkSchema> {
  const r = okpJwkSchema.safeParse(jwk);
  if (!r.success) {
    throw new CryptoError(
      "invalid_jwk",
      `invalid OKP JWK: ${r.error.issues[0]?.message ?? "bad shape"}`,
    );
  }
  return r.data;
}

function decode32(s: string, what: string): Uint8Array {
  try {
    return assertBytes(fromBase64Url(s), 32, what);
  } catch (cause) {
    throw new CryptoError("invalid_jwk", `invalid JWK member ${what}`, { cause });
  }
}

function checkAlgUse(j: z.infer<typeof okpJwkSchema>): void {
  const sig = j.crv === "Ed25519";
  // "Ed25519" is the fully specified name of draft-ietf-jose-fully-specified-algorithms.
  const algs = sig ? ["EdDSA", "Ed25519"] : ["ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW"];
  if (j.alg !== undefined && !algs.includes(j.alg)) {
    throw new CryptoError("invalid_jwk", `alg ${j.alg} does not fit ${j.crv}`);
  }
  if (j.use !== undefined && j.use !== (sig ? "sig" : "enc")) {
    throw new CryptoError("invalid_jwk", `use ${j.use} does not fit ${j.crv}`);
  }
}

/** Public key bytes from an Ed25519 JWK. Rejects private members, wrong curve, bad or weak points. */
export function publicKeyFromJwk(jwk: unknown): Uint8Array {
  const j = parse(jwk);
  if (j.crv !== "Ed25519")
    throw new CryptoError("invalid_jwk", `expected crv Ed25519, got ${j.crv}`);
  // A public JWK carrying "d" means someone is leaking a private key: refuse rather than strip.
  if (j.d !== undefined) throw new CryptoError("invalid_jwk", "public JWK must not contain d");
  checkAlgUse(j);
  if (j.key_ops !== undefined && !j.key_ops.includes("verify")) {
    throw new CryptoError("invalid_jwk", "key_ops does not allow verify");
  }
  const x = decode32(j.x, "x");
  if (!isValidEd25519PublicKey(x))
    throw new CryptoError("invalid_key", "not a valid Ed25519 public key");
  return x;
}

/** RFC 8037 export of an OKP key; includes `d` only when a secret key is given. */
export function exportOkpJwk(key: OkpKey): JsonWebKeyOkp {
  assertBytes(key.publicKey, 32, `${key.crv} public key`);
  const out: JsonWebKeyOkp = {
    kty: "OKP",
    crv: key.crv,
    x: toBase64Url(key.publicKey),
    kid: key.kid ?? okpThumbprint(key.crv, key.publicKey),
  };
  if (key.secretKey !== undefined)
    out.d = toBase64Url(assertBytes(key.secretKey, 32, "secret key"));
  return out;
}

/** RFC 8037 import of an OKP key (public or private). A private key must match its `x`. */
export async function importOkpJwk(jwk: unknown): Promise<OkpKey> {
  const j = parse(jwk);
  checkAlgUse(j);
  const publicKey = decode32(j.x, "x");
  if (j.crv === "Ed25519" && !isValidEd25519PublicKey(publicKey)) {
    throw new CryptoError("invalid_key", "not a valid Ed25519 public key");
  }
  const out: OkpKey = { crv: j.crv, publicKey };
  if (j.kid !== undefined) out.kid = j.kid;
  if (j.d !== undefined) {
    const secretKey = decode32(j.d, "d");
    const derived =
      j.crv === "Ed25519"
        ? await ed25519PublicKeyFromSeed(secretKey)
        : x25519.getPublicKey(secretKey);
    if (toBase64Url(derived) !== j.x) throw new CryptoError("invalid_jwk", "d does not match x");
    out.secretKey = secretKey;
  }
  return out;
}
