// Client side: sign a request with RFC 9421 + Ed25519, adding Content-Digest for bodies.
import type { Parameters } from "structured-headers";
import { toBase64Url, utf8 } from "../encoding";
import { buildSignatureBase, type HttpRequestParts, normalizeRequest } from "./base";
import { bodyBytes } from "./body";
import { createContentDigest, type DigestAlgorithm } from "./digest";
import { serializeSignatureFields } from "./fields";
import type { Signer } from "./ports";

export interface SignOptions {
  readonly keyid: string;
  /** Seconds since the epoch; defaults to now. */
  readonly created?: number;
  /** Defaults to 16 random bytes, base64url. */
  readonly nonce?: string;
  readonly label?: string;
  /** Defaults to the server policy's set (defaultComponents). */
  readonly components?: readonly string[];
  readonly expires?: number;
  readonly tag?: string;
  readonly digestAlgorithm?: DigestAlgorithm;
}

/** Lowercase header names, ready to merge into the outgoing request. */
export interface SignatureHeaders {
  readonly "content-digest"?: string;
  readonly "signature-input": string;
  readonly signature: string;
}

export function newNonce(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Fields that steer what a request returns without being in its path or body: when a request
 * carries one, its signature must cover it (docs/http-api.md "Authentication"). `last-event-id`
 * says where a server-sent event stream resumes; uncovered, an on-path party could replay or skip
 * events for the client.
 */
export const COVERED_WHEN_PRESENT = ["last-event-id"] as const;

/**
 * The components a signature must cover, the one definition the signer's default and the
 * verifier's policy share: @method @authority @path, @query with a query, content-digest with a
 * body, and each of COVERED_WHEN_PRESENT the request carries.
 */
export function defaultComponents(url: URL, hasBody: boolean, headers?: Headers): string[] {
  const c = ["@method", "@authority", "@path"];
  if (url.search !== "") c.push("@query");
  if (hasBody) c.push("content-digest");
  for (const f of COVERED_WHEN_PRESENT) if (headers?.has(f)) c.push(f);
  return c;
}

export async function signRequest(
  req: HttpRequestParts,
  signer: Signer,
  opts: SignOptions,
): Promise<SignatureHeaders> {
  // A copy: the content-digest set below must not leak into the caller's Headers.
  const norm = normalizeRequest({ ...req, headers: new Headers(req.headers) });
  const body = bodyBytes(req.body);
  const hasBody = body !== undefined && body.length > 0;
  let contentDigest: string | undefined;
  if (body !== undefined) {
    contentDigest = createContentDigest(body, opts.digestAlgorithm);
    // The base must see the header exactly as it will be sent.
    norm.headers.set("content-digest", contentDigest);
  }
  const components = opts.components ?? defaultComponents(norm.url, hasBody, norm.headers);

  const params: Parameters = new Map();
  params.set("created", opts.created ?? Math.floor(Date.now() / 1000));
  if (opts.expires !== undefined) params.set("expires", opts.expires);
  params.set("keyid", opts.keyid);
  params.set("alg", "ed25519");
  params.set("nonce", opts.nonce ?? newNonce());
  if (opts.tag !== undefined) params.set("tag", opts.tag);

  const base = buildSignatureBase(components, params, norm);
  const signature = await signer.sign(utf8(base));
  const fields = serializeSignatureFields(opts.label ?? "sig1", components, params, signature);
  return {
    ...(contentDigest !== undefined ? { "content-digest": contentDigest } : {}),
    "signature-input": fields.signatureInput,
    signature: fields.signature,
  };
}
