// RFC 9530 Content-Digest: a structured Dictionary of algorithm → byte sequence.
import { sha512 } from "@noble/hashes/sha2.js";
import { parseDictionary, serializeDictionary } from "structured-headers";
import { equalBytes, sha256Bytes } from "../encoding";
import { isByteSequence } from "./sf";

const ALGORITHMS = {
  "sha-256": (b: Uint8Array) => new Uint8Array(sha256Bytes(b)), // installed impl (native on Node)
  "sha-512": sha512,
} as const satisfies Record<string, (b: Uint8Array) => Uint8Array>;

export type DigestAlgorithm = keyof typeof ALGORITHMS;

/** Bounded cost: a digest field is a couple of short members. */
const MAX_FIELD_LENGTH = 1024;

export function createContentDigest(
  body: Uint8Array,
  algorithm: DigestAlgorithm = "sha-256",
): string {
  return serializeDictionary(new Map([[algorithm, [ALGORITHMS[algorithm](body), new Map()]]]));
}

export type DigestCheck =
  | { readonly ok: true; readonly algorithms: readonly DigestAlgorithm[] }
  | {
      readonly ok: false;
      readonly reason: "malformed" | "unsupported" | "mismatch";
      readonly detail: string;
    };

/**
 * Checks every supported digest in the field against the body. At least one supported
 * algorithm must be present and all present supported ones must match; unknown ones are ignored
 * (RFC 9530 §2) but cannot satisfy the check on their own.
 */
export function verifyContentDigest(field: string, body: Uint8Array): DigestCheck {
  if (field.length > MAX_FIELD_LENGTH) {
    return { ok: false, reason: "malformed", detail: "Content-Digest field too long" };
  }
  let dict: ReturnType<typeof parseDictionary>;
  try {
    dict = parseDictionary(field);
  } catch {
    return {
      ok: false,
      reason: "malformed",
      detail: "Content-Digest is not a structured dictionary",
    };
  }
  const checked: DigestAlgorithm[] = [];
  for (const [name, member] of dict) {
    if (!Object.hasOwn(ALGORITHMS, name)) continue;
    const alg = name as DigestAlgorithm;
    const value = member[0];
    if (Array.isArray(value) || !isByteSequence(value)) {
      return {
        ok: false,
        reason: "malformed",
        detail: `Content-Digest ${alg} is not a byte sequence`,
      };
    }
    if (!equalBytes(new Uint8Array(value), ALGORITHMS[alg](body))) {
      return {
        ok: false,
        reason: "mismatch",
        detail: `Content-Digest ${alg} does not match the body`,
      };
    }
    checked.push(alg);
  }
  if (checked.length === 0) {
    return {
      ok: false,
      reason: "unsupported",
      detail: "Content-Digest has no sha-256 or sha-512 member",
    };
  }
  return { ok: true, algorithms: checked };
}
