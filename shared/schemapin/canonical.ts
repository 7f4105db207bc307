// "schemapin-v1" canonical form: keys sorted recursively, compact separators, UTF-8, arrays in
// order (Python: json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)).
//
// On the domain where the reference SDKs agree (string keys without astral characters, integers
// in the safe range, ordinary decimals) this is byte-identical to RFC 8785, so we validate the
// value against that domain and then reuse shared/encoding's JCS. Outside it the SDKs disagree
// with each other, so we refuse rather than guess which one signed:
// - keys with astral characters: Python sorts by code point, JS/JCS by UTF-16 unit;
// - non-integers below 1e-4 in magnitude: Python prints 1e-05, JS prints 0.00001;
// - integers beyond 2^53: not representable in JS at all;
// - lone surrogates: not encodable as UTF-8 (Python raises).
// Known residual divergence we cannot see after JSON.parse: a signer that wrote `1.0` (Python
// keeps "1.0", JS prints "1"), and the JS SDK's ordering of integer-like keys.
import { canonicalJson, utf8 } from "../encoding";
import { SchemaPinError } from "./errors";

export const CANONICALIZATION_V1 = "schemapin-v1";

/** Limits that bound the cost of canonicalizing untrusted input. */
export const CANONICAL_LIMITS = { maxDepth: 64, maxNodes: 100_000 } as const;

const LONE_SURROGATE = /\p{Cs}/u;
const ASTRAL = /[\u{10000}-\u{10FFFF}]/u;

function checkString(s: string, where: string): void {
  // With the u flag \p{Cs} only matches unpaired surrogates.
  if (LONE_SURROGATE.test(s)) {
    throw new SchemaPinError("schema_canonicalization_failed", `lone surrogate in ${where}`);
  }
}

function checkDomain(value: unknown): void {
  let nodes = 0;
  const walk = (v: unknown, depth: number, path: string): void => {
    if (++nodes > CANONICAL_LIMITS.maxNodes) {
      throw new SchemaPinError("schema_canonicalization_failed", "schema has too many nodes");
    }
    if (depth > CANONICAL_LIMITS.maxDepth) {
      throw new SchemaPinError("schema_canonicalization_failed", "schema nests too deeply");
    }
    if (v === null || typeof v === "boolean") return;
    if (typeof v === "string") {
      checkString(v, path);
      return;
    }
    if (typeof v === "number") {
      if (!Number.isFinite(v)) {
        throw new SchemaPinError("schema_canonicalization_failed", `non-finite number at ${path}`);
      }
      if (Number.isInteger(v) ? !Number.isSafeInteger(v) : Math.abs(v) < 1e-4) {
        throw new SchemaPinError(
          "canonicalization_unsupported",
          `number at ${path} has no SDK-agreed schemapin-v1 form`,
        );
      }
      return;
    }
    if (Array.isArray(v)) {
      // Index loop, not forEach: a hole must fail here rather than vanish.
      for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
      return;
    }
    if (typeof v === "object") {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        throw new SchemaPinError("schema_canonicalization_failed", `non-JSON object at ${path}`);
      }
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
        checkString(k, `key at ${path}`);
        if (ASTRAL.test(k)) {
          throw new SchemaPinError(
            "canonicalization_unsupported",
            `key at ${path} contains a non-BMP character (SDKs sort it differently)`,
          );
        }
        walk(item, depth + 1, `${path}.${k}`);
      }
      return;
    }
    throw new SchemaPinError("schema_canonicalization_failed", `non-JSON value at ${path}`);
  };
  walk(value, 0, "$");
}

/** schemapin-v1 canonical string. Throws SchemaPinError on values outside the interoperable domain. */
export function canonicalizeSchema(value: unknown): string {
  checkDomain(value);
  try {
    return canonicalJson(value);
  } catch (e) {
    throw new SchemaPinError(
      "schema_canonicalization_failed",
      `cannot canonicalize: ${(e as Error).message}`,
    );
  }
}

export const canonicalSchemaBytes = (value: unknown): Uint8Array => utf8(canonicalizeSchema(value));

/** Accepts an absent algorithm or "schemapin-v1"; anything else is a hard failure (SDK v1.4). */
export function checkCanonicalization(algorithm: string | undefined | null): void {
  if (algorithm == null || algorithm === CANONICALIZATION_V1) return;
  throw new SchemaPinError(
    "canonicalization_unsupported",
    `unsupported canonicalization algorithm: ${algorithm.slice(0, 64)}`,
  );
}
