// RFC 9421 authentication for /v1 (docs/http-api.md): the verified key's role and subject go on the
// context; every rejection is a 401 with a stable type and an `auth.failed` audit event.
import type { Context, MiddlewareHandler } from "hono";
import {
  type ActiveKey,
  type KeyResolver,
  type ReplayCache,
  type VerifyFn,
  verifyRequest,
} from "../../shared/httpsig";
import type { KeyLimits } from "../../shared/limits";
import type { CallerIdentity } from "../../shared/policy";
import { startSpan } from "../../shared/tracing";
import { Problem, problemResponse } from "../problem";
import type { AppEnv } from "../router";
import type { Role } from "./roles";

export interface AuthKey extends ActiveKey {
  readonly kid: string;
  readonly role: Role | "service";
  readonly subject: string;
  /** The admin-set groups of the key's record; none when absent. */
  readonly groups?: readonly string[];
  /** The admin-set code trust of the key's record; 0 (untrusted) when absent. */
  readonly trust?: number;
  /** The quotas an admin set on the key's record (docs/governance.md "Quotas"). */
  readonly limits?: KeyLimits;
}

/**
 * Who the server authenticated, as policies see it (docs/governance.md "Identity comes from the
 * server").
 */
export function identityOf(c: Context<AppEnv>): CallerIdentity {
  return {
    kid: c.get("keyid") ?? "",
    subject: c.get("subject") ?? "",
    role: c.get("role") ?? "",
    groups: c.get("groups") ?? [],
    trust: c.get("trust") ?? 0,
  };
}

type Unauthenticated = "auth-required" | "key-unknown" | "signature-invalid" | "replay";

/** A rejected request: a 401 (authentication) or, once authenticated, a 403 (outside its role). */
export interface AuthFailure {
  code: Unauthenticated | "forbidden";
  detail: string;
  keyid?: string;
  method: string;
  path: string;
  requestId: string;
  /** The client's network address, when the runtime knows it. */
  address?: string;
}

export interface AuthDeps {
  resolveKey: KeyResolver<AuthKey>;
  verify: VerifyFn;
  replay: ReplayCache;
  maxSkewSeconds: number;
  /** When set, the signed @authority must be one of these (stops cross-service replays). */
  allowedAuthorities?: readonly string[];
  now?: () => number;
  /**
   * Appends the `auth.failed` audit event, for every 401 and for a 403 from a role check; a
   * failure to audit must not turn a rejection into an allow.
   */
  onRejected(f: AuthFailure, c: Context<AppEnv>): Promise<void>;
  /**
   * Requests whose nonce the route reserves itself, atomically with its audit append (on the
   * context as `nonceClaim`): one durable write per request instead of two. If the route ends
   * without taking the claim (a 400, say), the nonce is reserved here afterwards, so a replay is
   * refused whatever the route answered.
   */
  deferNonce?: (method: string, path: string) => boolean;
}

// docs/http-api.md: every string in a request is well-formed Unicode; a body that is not UTF-8 is
// not.
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/**
 * The body as text, or, when its bytes are not UTF-8, a rejection that every reader of the text
 * (the JSON guard, a text/plain route) answers as 400 `validation`. Nothing reads the body in any
 * other form, so no route sees replacement characters where the signed bytes had something else.
 */
function bodyText(body: Uint8Array): Promise<string> {
  try {
    return Promise.resolve(utf8Strict.decode(body));
  } catch {
    const refused = Promise.reject(
      new Problem(
        400,
        "validation",
        "Request failed validation",
        "the body is not well-formed UTF-8",
      ),
    );
    refused.catch(() => undefined); // a route that never reads its body must not crash on it
    return refused;
  }
}

const titles = {
  "auth-required": "Authentication required",
  "key-unknown": "Unknown or revoked key",
  "signature-invalid": "Invalid signature",
  replay: "Replayed or stale request",
} as const;

/** The 401 every authentication failure answers with. */
export function authProblem(code: Unauthenticated, detail: string): Problem {
  return new Problem(401, code, titles[code], detail);
}

export function authenticate(deps: AuthDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method;
    const audit = (code: AuthFailure["code"], detail: string, keyid?: string) =>
      deps.onRejected(
        {
          code,
          detail,
          method,
          path: c.req.path,
          requestId: c.get("requestId"),
          ...(keyid ? { keyid } : {}),
          ...(c.get("clientAddress") ? { address: c.get("clientAddress") } : {}),
        },
        c,
      );
    const reject = async (code: Unauthenticated, detail: string, keyid?: string) => {
      await audit(code, detail, keyid);
      return authProblem(code, detail);
    };
    const deferNonce = deps.deferNonce?.(method, c.req.path) === true;
    const body =
      method === "GET" || method === "HEAD" ? undefined : new Uint8Array(await c.req.arrayBuffer());
    // Hono converts a cached ArrayBuffer to text through a new Response on every text()/json()
    // call (twice per request here: jsonGuard and the validator); decode it once instead, strictly.
    // (bodyCache holds promises at runtime; its declared type says string.)
    if (body) c.req.bodyCache.text = bodyText(body) as unknown as string;
    // A store failure (Redis down) is neither an allow nor a client error: 503, fail closed.
    const verifying = startSpan("sigil.verify");
    const result = await verifyRequest(
      {
        method,
        url: c.req.url,
        headers: c.req.raw.headers,
        ...(body && body.length > 0 ? { body } : {}),
      },
      {
        resolveKey: deps.resolveKey,
        verify: deps.verify,
        replayCache: deps.replay,
        maxSkewSeconds: deps.maxSkewSeconds,
        ...(deps.now ? { now: deps.now } : {}),
        ...(deps.allowedAuthorities?.length ? { allowedAuthorities: deps.allowedAuthorities } : {}),
        ...(deferNonce ? { deferNonce } : {}),
      },
    )
      .catch((e: unknown) => {
        throw storeUnavailable(e);
      })
      .finally(() => verifying.end());
    if (!result.ok) throw await reject(result.code, result.detail, result.keyid);
    c.set("keyid", result.key.kid);
    c.set("role", result.key.role);
    c.set("subject", result.key.subject);
    c.set("groups", result.key.groups ?? []);
    c.set("trust", result.key.trust ?? 0);
    if (result.key.limits) c.set("keyLimits", result.key.limits);
    if (deferNonce && result.nonce !== undefined) {
      c.set("nonceClaim", {
        keyid: result.keyid,
        nonce: result.nonce,
        ttlSeconds: result.nonceTtlSeconds,
      });
    }
    await next();
    // A role check refused the request (requireRole, in the route): audited like a 401.
    if (c.error instanceof Problem && c.error.type === "forbidden") {
      await audit("forbidden", c.error.detail ?? "outside its role", result.keyid);
    }
    if (!deferNonce) return;
    const left = c.get("nonceClaim");
    if (left) {
      c.set("nonceClaim", undefined);
      let fresh: boolean;
      try {
        fresh = await deps.replay.checkAndStore(left.keyid, left.nonce, left.ttlSeconds);
      } catch (e) {
        c.res = problemResponse(c, storeUnavailable(e));
        return;
      }
      if (!fresh) {
        c.res = problemResponse(c, await reject("replay", "nonce already used", left.keyid));
      }
    } else if (c.error instanceof Problem && c.error.type === "replay") {
      // The route's audit append found the nonce used: nothing was stored; the 401 is already out.
      await reject("replay", c.error.detail ?? "nonce already used", result.keyid);
    }
  };
}

const storeUnavailable = (e: unknown) =>
  new Problem(
    503,
    "unavailable",
    "Authentication unavailable",
    `key or nonce store failed: ${(e as Error).message}`,
  );

/**
 * Nesting deeper than this is refused before JSON.parse sees it (bounded cost, no stack blow-up).
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a Content-Type names JSON: `application/json` or any `+json` type (RFC 6839), in any
 * letter case, with any parameters and surrounding whitespace. The media type is taken as Hono's
 * json validator takes it (before `;`, trimmed, lowercased), and this accepts everything that
 * validator parses (`application/([\w.-]+\+)?json`), so no route parses a body the guard skipped.
 */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const essence = contentType.split(";", 1)[0]!.trim().toLowerCase();
  return essence === "application/json" || essence.endsWith("+json");
}

const hexValue = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;

/** The code unit a `\uXXXX` escape whose hex digits start at `at` stands for, or -1. */
function escapedUnit(text: string, at: number): number {
  const a = hexValue(text.charCodeAt(at));
  const b = hexValue(text.charCodeAt(at + 1));
  const c = hexValue(text.charCodeAt(at + 2));
  const d = hexValue(text.charCodeAt(at + 3));
  return (a | b | c | d) < 0 ? -1 : (a << 12) | (b << 8) | (c << 4) | d;
}

export type JsonScan =
  | { ok: true }
  | { ok: false; reason: "too-deep" }
  | { ok: false; reason: "ill-formed"; offset: number };

/**
 * One pass over JSON text, before JSON.parse: whether it nests deeper than `max`, and whether some
 * string (key or value) would not be well-formed Unicode once parsed, i.e. holds a lone surrogate,
 * raw or as a `\u` escape (a high one not followed by a low one, or a low one on its own).
 * Malformed JSON is left to JSON.parse; an ill-formed string in it is reported all the same.
 */
export function scanJson(text: string, max: number): JsonScan {
  let depth = 0;
  let inString = false;
  let illFormedAt = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 34 /* " */) inString = false;
      else if (ch === 92 /* \ */) {
        if (text.charCodeAt(i + 1) !== 117 /* u */) {
          i++;
          continue;
        }
        const unit = escapedUnit(text, i + 2);
        if ((unit & 0xf800) === 0xd800) {
          // A surrogate escape is well-formed only as the high half of an escaped pair.
          const low =
            unit < 0xdc00 && text.charCodeAt(i + 6) === 92 && text.charCodeAt(i + 7) === 117
              ? escapedUnit(text, i + 8)
              : -1;
          if (low >= 0xdc00 && low <= 0xdfff) {
            i += 11;
            continue;
          }
          if (illFormedAt < 0) illFormedAt = i;
        }
        i += unit < 0 ? 1 : 5;
      } else if ((ch & 0xf800) === 0xd800) {
        // A raw surrogate (text that did not come from a strict UTF-8 decode): pairs only.
        if (ch < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
        else if (illFormedAt < 0) illFormedAt = i;
      }
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > max) return { ok: false, reason: "too-deep" };
    } else if (ch === 125 || ch === 93) depth--;
  }
  return illFormedAt < 0 ? { ok: true } : { ok: false, reason: "ill-formed", offset: illFormedAt };
}

/**
 * For JSON bodies (every JSON media type): a clear 400 for malformed or too deeply nested JSON
 * (`invalid-json`) and for a string that is not well-formed Unicode (`validation`: a lone
 * surrogate would make canonicalisation of the audit event throw), before validation.
 */
export function jsonGuard(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method;
    if (method !== "GET" && method !== "HEAD" && isJsonMediaType(c.req.header("content-type"))) {
      const text = await c.req.text();
      const scan = scanJson(text, MAX_JSON_DEPTH);
      if (!scan.ok && scan.reason === "too-deep") {
        throw new Problem(
          400,
          "invalid-json",
          "JSON too deeply nested",
          `nesting is limited to ${MAX_JSON_DEPTH} levels`,
        );
      }
      try {
        JSON.parse(text);
      } catch (e) {
        throw new Problem(400, "invalid-json", "Malformed JSON", (e as Error).message);
      }
      if (!scan.ok) {
        throw new Problem(
          400,
          "validation",
          "Request failed validation",
          `every string must be well-formed Unicode: a lone surrogate at character ${scan.offset}`,
        );
      }
    }
    await next();
  };
}
