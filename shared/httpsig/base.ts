// RFC 9421 §2: component values and the signature base (§2.5).
import { type Parameters, serializeInnerList, serializeItem } from "structured-headers";
import type { BodyInit } from "./body";

/** A request as both sides see it; headers in any Fetch `HeadersInit` form. */
export interface HttpRequestParts {
  readonly method: string;
  readonly url: string | URL;
  readonly headers?: HeadersInit;
  readonly body?: BodyInit | null;
}

/** The request after normalisation, shared by the signer and the verifier. */
export interface NormalizedRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Headers;
}

export const DERIVED_COMPONENTS = [
  "@method",
  "@authority",
  "@path",
  "@query",
  "@target-uri",
  "@scheme",
  "@request-target",
] as const;

/** Lowercase RFC 9110 token: what a field name component must look like. */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

export class SignatureBaseError extends Error {
  override readonly name = "SignatureBaseError";
}

export function normalizeRequest(req: HttpRequestParts): NormalizedRequest {
  const url = typeof req.url === "string" ? new URL(req.url) : req.url;
  // A Headers is used as is: copying it would materialise every field (the Node adapter's
  // lightweight Headers answers get() from the raw header list without building one).
  const headers = req.headers instanceof Headers ? req.headers : new Headers(req.headers);
  return { method: req.method, url, headers };
}

/** Whether a covered-component name is one this implementation can compute. */
export function isSupportedComponent(name: string): boolean {
  if (name.startsWith("@")) return (DERIVED_COMPONENTS as readonly string[]).includes(name);
  return FIELD_NAME.test(name);
}

/** RFC 9421 §2.1/§2.2 value of one component; throws SignatureBaseError when absent/unknown. */
export function componentValue(name: string, req: NormalizedRequest): string {
  const u = req.url;
  switch (name) {
    case "@method":
      return req.method;
    case "@authority":
      // URL.host is lowercased and drops the scheme's default port, as §2.2.3 asks.
      return u.host;
    case "@scheme":
      return u.protocol.slice(0, -1).toLowerCase();
    case "@path":
      return u.pathname === "" ? "/" : u.pathname;
    case "@query":
      // An absent query is "?" alone (§2.2.7).
      return `?${u.search.slice(1)}`;
    case "@request-target":
      return `${u.pathname === "" ? "/" : u.pathname}${u.search}`;
    case "@target-uri":
      // No userinfo and no fragment: they are not part of the target URI.
      return `${u.protocol}//${u.host}${u.pathname}${u.search}`;
  }
  if (name.startsWith("@") || !FIELD_NAME.test(name)) {
    throw new SignatureBaseError(`unsupported component ${JSON.stringify(name)}`);
  }
  // Fetch Headers already trims values and joins repeated fields with ", " (§2.1).
  const value = req.headers.get(name);
  if (value === null) throw new SignatureBaseError(`covered header ${name} is missing`);
  return value;
}

/** The `@signature-params` value: the inner list of component identifiers with its parameters. */
export function serializeSignatureParams(
  components: readonly string[],
  params: Parameters,
): string {
  return serializeInnerList([components.map((c) => [c, new Map()]), params]);
}

/** RFC 9421 §2.5 signature base. Component names carry no parameters (§2.1 `sf`, `key`, ... are not supported). */
export function buildSignatureBase(
  components: readonly string[],
  params: Parameters,
  req: NormalizedRequest,
): string {
  const seen = new Set<string>();
  let base = "";
  for (const name of components) {
    if (seen.has(name)) throw new SignatureBaseError(`component ${name} is covered twice`);
    seen.add(name);
    if (name === "@signature-params") {
      throw new SignatureBaseError("@signature-params cannot be a covered component");
    }
    const value = componentValue(name, req);
    if (/[\r\n]/.test(value)) throw new SignatureBaseError(`component ${name} contains a newline`);
    base += `${serializeItem(name)}: ${value}\n`;
  }
  base += `"@signature-params": ${serializeSignatureParams(components, params)}`;
  return base;
}
