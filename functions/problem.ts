// RFC 9457 problem details with stable `type` URIs: clients switch on the type suffix.
import type { Context } from "hono";
import type {} from "hono/request-id";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const problemTypeBase = "https://sigil.dev/errors/";

export type ProblemType =
  | "auth-required"
  | "key-unknown"
  | "signature-invalid"
  | "replay"
  | "forbidden"
  | "validation"
  | "invalid-json"
  | "body-too-large"
  | "unsupported-media-type"
  | "not-found"
  | "method-not-allowed"
  | "policy-invalid"
  | "policy-denied"
  | "reserved-attribute"
  | "pin-conflict"
  | "conflict"
  | "separation-of-duties"
  | "emergency-mode"
  | "unavailable"
  | "rate-limited"
  | "quarantined"
  | "internal";

export interface FieldError {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class Problem extends Error {
  /** Response headers the problem needs (Retry-After on a 429). */
  headers?: Record<string, string>;

  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: ProblemType,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: ReadonlyArray<FieldError | Record<string, unknown>>,
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail ?? title);
    this.name = "Problem";
  }
}

export function problemResponse(c: Context, p: Problem): Response {
  const body: Record<string, unknown> = {
    type: problemTypeBase + p.type,
    title: p.title,
    status: p.status,
    ...(p.detail !== undefined ? { detail: p.detail } : {}),
    // docs/http-api.md: a validation error always carries `errors`; one not tied to a field names
    // the request as a whole (path "(root)", as schema errors do).
    ...(p.errors
      ? { errors: p.errors }
      : p.type === "validation"
        ? { errors: [{ path: "(root)", message: p.detail ?? p.title }] }
        : {}),
    ...(p.extra ?? {}),
  };
  // Typed by hono/request-id's ContextVariableMap; unset when no requestId middleware ran.
  const requestId: string | undefined = c.get("requestId");
  if (requestId) body.instance = `urn:sigil:request:${requestId}`;
  return c.newResponse(JSON.stringify(body), p.status, {
    ...p.headers,
    "content-type": "application/problem+json",
  });
}

/** 429 `rate-limited` with Retry-After in whole seconds (at least 1). */
export function rateLimited(detail: string, retryAfterMs: number): Problem {
  const p = new Problem(429, "rate-limited", "Too many requests", detail);
  p.headers = { "retry-after": String(Math.max(1, Math.ceil(retryAfterMs / 1000))) };
  return p;
}

export const notFound = (what: string) =>
  new Problem(404, "not-found", "Not found", `${what} was not found`);
