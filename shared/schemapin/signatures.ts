// Signature primitives and SchemaPin's hashing layers on top of them.
//   raw ECDSA:   ECDSA-P256-SHA256(message)                 (Wycheproof-level primitive)
//   schema:      ECDSA-P256-SHA256(SHA-256(canonical))      (Python/JS/Rust SDKs: double hash)
//   Go variant:  ECDSA-P256-SHA256(canonical)               (Go SDK: single hash; never "valid")
//   bundle:      ECDSA-P256-SHA256(canonical bundle)        (all SDKs: single hash)
//   Ed25519:     Ed25519(SHA-256(canonical))                (security model's verify_tool)
import * as ed from "@noble/ed25519";
import { fromBase64, sha256Bytes } from "../encoding";
import { canonicalSchemaBytes } from "./canonical";
import { derToP1363 } from "./der";
import { SchemaPinError } from "./errors";
import type { KeyAlgorithm, ParsedPublicKey } from "./keys";

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" } as const;

/** Max length of a base64 signature we are willing to decode (DER ECDSA ≤ 72 bytes). */
export const MAX_SIGNATURE_B64 = 128;

// Web Crypto wants an ArrayBuffer-backed view; copying also detaches us from caller buffers.
const buf = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

async function importP256(key: ParsedPublicKey): Promise<CryptoKey | null> {
  try {
    return await crypto.subtle.importKey("spki", buf(key.spki), ECDSA_P256, false, ["verify"]);
  } catch {
    return null; // not a point on the curve: nothing can verify under it
  }
}

/**
 * Raw ECDSA-P256-SHA256 verify of a DER signature over `message` (hashed once, as in
 * Wycheproof). Non-canonical DER → false.
 */
export async function verifyEcdsaP256Der(
  key: ParsedPublicKey,
  message: Uint8Array,
  derSignature: Uint8Array,
): Promise<boolean> {
  if (key.algorithm !== "ES256") return false;
  let p1363: Uint8Array;
  try {
    p1363 = derToP1363(derSignature);
  } catch {
    return false;
  }
  const ck = await importP256(key);
  if (!ck) return false;
  try {
    return await crypto.subtle.verify(ECDSA_SHA256, ck, buf(p1363), buf(message));
  } catch {
    return false;
  }
}

/** Raw Ed25519 verify (RFC 8032 strict, not ZIP-215). */
export async function verifyEd25519(
  key: ParsedPublicKey,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (key.algorithm !== "Ed25519" || signature.length !== 64) return false;
  try {
    return await ed.verifyAsync(signature, message, key.raw, { zip215: false });
  } catch {
    return false;
  }
}

export function decodeSignatureB64(signatureB64: string): Uint8Array {
  if (signatureB64.length === 0 || signatureB64.length > MAX_SIGNATURE_B64) {
    throw new SchemaPinError("signature_invalid", "signature missing or too long");
  }
  try {
    return fromBase64(signatureB64);
  } catch {
    throw new SchemaPinError("signature_invalid", "signature is not standard padded base64");
  }
}

/** Which hashing scheme a schema signature verified under. */
export type SignatureVariant = "schemapin-v1" | "single-hash-go" | "ed25519-schema-hash";

export type SchemaSignatureCheck =
  | { valid: true; variant: "schemapin-v1" | "ed25519-schema-hash" }
  | { valid: false; variant: "single-hash-go" | null; detail: string };

/**
 * Verifies a schema signature under the standard scheme for the key's algorithm. When an ECDSA
 * signature fails the standard double hash but verifies over the single hash, it is reported
 * as the Go SDK's variant (still invalid: the two schemes sign different digests).
 */
export async function checkSchemaSignature(
  schema: unknown,
  signatureB64: string,
  key: ParsedPublicKey,
  algorithm?: KeyAlgorithm,
): Promise<SchemaSignatureCheck> {
  if (algorithm && algorithm !== key.algorithm) {
    return {
      valid: false,
      variant: null,
      detail: `algorithm ${algorithm} does not match the provider's ${key.algorithm} key`,
    };
  }
  const canonical = canonicalSchemaBytes(schema);
  const h = sha256Bytes(canonical);
  const sig = decodeSignatureB64(signatureB64);
  if (key.algorithm === "Ed25519") {
    return (await verifyEd25519(key, h, sig))
      ? { valid: true, variant: "ed25519-schema-hash" }
      : {
          valid: false,
          variant: null,
          detail: "Ed25519 signature over the schema hash is invalid",
        };
  }
  if (await verifyEcdsaP256Der(key, h, sig)) return { valid: true, variant: "schemapin-v1" };
  if (await verifyEcdsaP256Der(key, canonical, sig)) {
    return {
      valid: false,
      variant: "single-hash-go",
      detail:
        "signature verifies only over the single SHA-256 of the canonical schema (Go SDK " +
        "variant), not SchemaPin v1's double hash; not accepted",
    };
  }
  return { valid: false, variant: null, detail: "ECDSA signature over the schema hash is invalid" };
}
