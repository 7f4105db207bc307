// RFC 9421 authentication for /v1 (HTTP-API.md): the verified key's role and subject go on the
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
import { Problem, problemResponse } from "../problem";
import type { AppEnv } from "../router";
import type { Role } from "./roles";

export interface AuthKey extends ActiveKey {
  readonly kid: string;
  readonly role: Role | "service";
  readonly subject: string;
  /** The quotas an admin set on the key's record (GOVERNANCE.md "Quotas"). */
  readonly limits?: KeyLimits;
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

const utf8Lenient = new TextDecoder();

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
    // call (twice per request here: jsonGuard and the validator); decode it once instead, as
    // Response.text() would (UTF-8, invalid sequences replaced).
    // (bodyCache holds promises at runtime; its declared type says string.)
    if (body) c.req.bodyCache.text = Promise.resolve(utf8Lenient.decode(body)) as unknown as string;
    // A store failure (Redis down) is neither an allow nor a client error: 503, fail closed.
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
    ).catch((e: unknown) => {
      throw storeUnavailable(e);
    });
    if (!result.ok) throw await reject(result.code, result.detail, result.keyid);
    c.set("keyid", result.key.kid);
    c.set("role", result.key.role);
    c.set("subject", result.key.subject);
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

/** Nesting deeper than this is refused before JSON.parse sees it (bounded cost, no stack blow-up). */
export const MAX_JSON_DEPTH = 64;

function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 || ch === 91) {
      if (++depth > max) return true;
    } else if (ch === 125 || ch === 93) depth--;
  }
  return false;
}

/** For JSON bodies: a clear 400 for malformed or too deeply nested JSON, before validation. */
export function jsonGuard(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const type = c.req.header("content-type") ?? "";
    if (c.req.method !== "GET" && type.startsWith("application/json")) {
      const text = await c.req.text();
      if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
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
    }
    await next();
  };
}
