// RFC 9421 authentication for /v1 (HTTP-API.md): the verified key's role and subject go on the
// context; every rejection is a 401 with a stable type and an `auth.failed` audit event.
import type { MiddlewareHandler } from "hono";
import {
  type ActiveKey,
  type KeyResolver,
  type ReplayCache,
  type VerifyFn,
  verifyRequest,
} from "../../shared/httpsig";
import { Problem } from "../problem";
import type { AppEnv } from "../router";
import type { Role } from "./roles";

export interface AuthKey extends ActiveKey {
  readonly kid: string;
  readonly role: Role | "service";
  readonly subject: string;
}

export interface AuthFailure {
  code: "auth-required" | "key-unknown" | "signature-invalid" | "replay";
  detail: string;
  keyid?: string;
  method: string;
  path: string;
  requestId: string;
}

export interface AuthDeps {
  resolveKey: KeyResolver<AuthKey>;
  verify: VerifyFn;
  replay: ReplayCache;
  maxSkewSeconds: number;
  /** When set, the signed @authority must be one of these (stops cross-service replays). */
  allowedAuthorities?: readonly string[];
  now?: () => number;
  /** Appends the `auth.failed` audit event; a failure to audit must not turn a 401 into an allow. */
  onRejected(f: AuthFailure): Promise<void>;
}

const utf8Lenient = new TextDecoder();

const titles = {
  "auth-required": "Authentication required",
  "key-unknown": "Unknown or revoked key",
  "signature-invalid": "Invalid signature",
  replay: "Replayed or stale request",
} as const;

export function authenticate(deps: AuthDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const method = c.req.method;
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
      },
    ).catch((e: unknown) => {
      throw new Problem(
        503,
        "unavailable",
        "Authentication unavailable",
        `key or nonce store failed: ${(e as Error).message}`,
      );
    });
    if (!result.ok) {
      const failure: AuthFailure = {
        code: result.code,
        detail: result.detail,
        method,
        path: c.req.path,
        requestId: c.get("requestId"),
        ...(result.keyid ? { keyid: result.keyid } : {}),
      };
      await deps.onRejected(failure);
      throw new Problem(401, result.code, titles[result.code], result.detail);
    }
    c.set("keyid", result.key.kid);
    c.set("role", result.key.role);
    c.set("subject", result.key.subject);
    await next();
  };
}

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
