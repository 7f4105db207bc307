// Server side: RFC 9421 verification under Sigil's policy (docs/http-api.md, Authentication).
// Cheap syntactic and policy checks first, then the key, the digest and the signature; the
// nonce is stored only after the signature verified, so a forger cannot burn nonces.
import { utf8 } from "../encoding";
import {
  buildSignatureBase,
  type HttpRequestParts,
  isSupportedComponent,
  normalizeRequest,
  SignatureBaseError,
} from "./base";
import { bodyBytes } from "./body";
import { verifyContentDigest } from "./digest";
import { parseSignatureFields } from "./fields";
import type { ActiveKey, KeyLookup, KeyResolver, ReplayCache, VerifyFn } from "./ports";
import { defaultComponents } from "./sign";

export type VerifyErrorCode = "auth-required" | "key-unknown" | "signature-invalid" | "replay";

export interface VerifyOk<K extends ActiveKey = ActiveKey> {
  readonly ok: true;
  readonly keyid: string;
  readonly label: string;
  readonly created: number;
  /** Always set under the default policy; undefined only with `relaxPolicy.requireNonce: false`. */
  readonly nonce: string | undefined;
  /** How long the nonce must be remembered (while this `created` stays acceptable). */
  readonly nonceTtlSeconds: number;
  readonly coveredComponents: readonly string[];
  /** What the resolver returned, so callers get role/subject without a second lookup. */
  readonly key: K;
}

export interface VerifyError {
  readonly ok: false;
  readonly code: VerifyErrorCode;
  readonly detail: string;
  /** The claimed keyid when one could be read (for auditing the rejection). */
  readonly keyid?: string;
}

export type VerifyResult<K extends ActiveKey = ActiveKey> = VerifyOk<K> | VerifyError;

export interface VerifyOptions<K extends ActiveKey = ActiveKey> {
  readonly resolveKey: KeyResolver<K>;
  readonly verify: VerifyFn;
  readonly replayCache: ReplayCache;
  /** Allowed clock difference for `created`, both directions. Default 300 s. */
  readonly maxSkewSeconds?: number;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  /** Which signature to check; default: the first member of Signature-Input. */
  readonly label?: string;
  /** When set, `@authority` must be one of these (stops cross-service replays). */
  readonly allowedAuthorities?: readonly string[];
  /**
   * Leave the nonce unstored: the caller reserves it itself (for nonceTtlSeconds), in the
   * same atomic step as the request's only effect (the Node API's evaluate route, with its audit
   * event). A caller that sets this and does not reserve the nonce accepts replays.
   */
  readonly deferNonce?: boolean;
  /** Interop/testing only (e.g. RFC 9421 vectors). Never relax in production. */
  readonly relaxPolicy?: {
    readonly requireNonce?: boolean;
    /** false skips the coverage rule (defaultComponents: what a signature must cover). */
    readonly requireComponents?: boolean;
  };
}

export const DEFAULT_MAX_SKEW_SECONDS = 300;
const MAX_KEYID_LENGTH = 256;
const MAX_NONCE_LENGTH = 256;
const ED25519_SIGNATURE_LENGTH = 64;

const fail = (code: VerifyErrorCode, detail: string, keyid?: string): VerifyError =>
  keyid === undefined ? { ok: false, code, detail } : { ok: false, code, detail, keyid };

function isActive<K extends ActiveKey>(found: KeyLookup<K>): found is K {
  return found.status === "active";
}

export async function verifyRequest<K extends ActiveKey = ActiveKey>(
  req: HttpRequestParts,
  opts: VerifyOptions<K>,
): Promise<VerifyResult<K>> {
  let norm: ReturnType<typeof normalizeRequest>;
  try {
    norm = normalizeRequest(req);
  } catch {
    return fail("auth-required", "request URL or headers are malformed");
  }
  const parsed = parseSignatureFields(
    norm.headers.get("signature-input"),
    norm.headers.get("signature"),
    opts.label,
  );
  if (!parsed.ok) return fail("auth-required", parsed.detail);
  const { label, components, params, signature } = parsed.entry;

  // Signature parameters (RFC 9421 §2.3), typed strictly.
  const keyid = params.get("keyid");
  if (typeof keyid !== "string" || keyid.length === 0 || keyid.length > MAX_KEYID_LENGTH) {
    return fail("auth-required", "keyid parameter is required");
  }
  const created = params.get("created");
  if (typeof created !== "number" || !Number.isSafeInteger(created) || created < 0) {
    return fail("auth-required", "created parameter is required (integer seconds)", keyid);
  }
  const expires = params.get("expires");
  if (expires !== undefined && (typeof expires !== "number" || !Number.isSafeInteger(expires))) {
    return fail("auth-required", "expires parameter must be an integer", keyid);
  }
  const nonce = params.get("nonce");
  if (
    nonce !== undefined &&
    (typeof nonce !== "string" || nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH)
  ) {
    return fail("auth-required", "nonce parameter must be a non-empty string", keyid);
  }
  if (nonce === undefined && opts.relaxPolicy?.requireNonce !== false) {
    return fail("auth-required", "nonce parameter is required", keyid);
  }
  const alg = params.get("alg");
  if (alg !== undefined && alg !== "ed25519") {
    return fail("signature-invalid", "alg must be ed25519", keyid);
  }

  // Coverage policy: what the signature must protect.
  for (const c of components) {
    if (!isSupportedComponent(c)) return fail("auth-required", `unsupported component ${c}`, keyid);
  }
  const body = bodyBytes(req.body) ?? new Uint8Array(0);
  if (opts.relaxPolicy?.requireComponents !== false) {
    const required = defaultComponents(norm.url, body.length > 0, norm.headers);
    const missing = required.filter((c) => !components.includes(c));
    if (missing.length > 0) {
      return fail("auth-required", `signature must cover ${missing.join(", ")}`, keyid);
    }
  }

  // Freshness.
  const skew = opts.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  const nowSec = Math.floor((opts.now?.() ?? Date.now()) / 1000);
  if (created > nowSec + skew) return fail("replay", "created is in the future", keyid);
  if (created < nowSec - skew) return fail("replay", "created is too old", keyid);
  if (expires !== undefined && expires < nowSec) return fail("replay", "signature expired", keyid);

  if (opts.allowedAuthorities !== undefined && !opts.allowedAuthorities.includes(norm.url.host)) {
    return fail("signature-invalid", `request is not addressed to this service`, keyid);
  }

  const found = await opts.resolveKey(keyid);
  if (!isActive(found)) {
    const why = found.reason ?? found.status;
    return fail("key-unknown", `key ${keyid} is not usable: ${why}`, keyid);
  }

  // Content-Digest present → it must match the body, whether or not a body was sent.
  const digestField = norm.headers.get("content-digest");
  if (digestField !== null) {
    const check = verifyContentDigest(digestField, body);
    if (!check.ok) {
      return fail(
        check.reason === "mismatch" ? "signature-invalid" : "auth-required",
        check.detail,
        keyid,
      );
    }
  }

  let base: string;
  try {
    base = buildSignatureBase(components, params, norm);
  } catch (e) {
    if (e instanceof SignatureBaseError) return fail("signature-invalid", e.message, keyid);
    throw e;
  }
  if (signature.length !== ED25519_SIGNATURE_LENGTH) {
    return fail("signature-invalid", "signature has the wrong length", keyid);
  }
  let valid = false;
  try {
    valid = await opts.verify(found.publicKey, utf8(base), signature);
  } catch {
    valid = false;
  }
  if (!valid) return fail("signature-invalid", "signature does not verify", keyid);

  // Remember the nonce for as long as this `created` stays acceptable.
  const nonceTtlSeconds = Math.max(1, created + skew - nowSec + 1);
  if (nonce !== undefined && !opts.deferNonce) {
    if (!(await opts.replayCache.checkAndStore(keyid, nonce, nonceTtlSeconds))) {
      return fail("replay", "nonce already used", keyid);
    }
  }
  return {
    ok: true,
    keyid,
    label,
    created,
    nonce,
    nonceTtlSeconds,
    coveredComponents: components,
    key: found,
  };
}
