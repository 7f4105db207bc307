// Discovery of `https://{domain}/.well-known/schemapin.json` and of the standalone revocation
// document it may point to. Bounded in time and size, https only, no IP or localhost domains,
// redirects followed only within the same origin. Tests map a domain to a local base URL.
import { fromUtf8 } from "../encoding";
import {
  type RevocationDocument,
  revocationDocumentSchema,
  type WellKnownDocument,
  wellKnownSchema,
} from "./documents";
import { SchemaPinError } from "./errors";

export interface ResolvedProvider {
  domain: string;
  discovery: WellKnownDocument;
  /** The standalone revocation document, when the provider publishes one. */
  revocation: RevocationDocument | null;
  source: "well-known" | "trust-bundle";
}

/** Port: where provider keys and revocations come from. Throws SchemaPinError on failure. */
export interface DiscoveryResolver {
  resolve(domain: string): Promise<ResolvedProvider>;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Validates and lowercases a provider domain. Rejects IP literals, localhost and single-label
 * names unless `allowLocal` (tests only).
 */
export function normalizeDomain(domain: string, opts: { allowLocal?: boolean } = {}): string {
  const d = domain.toLowerCase();
  const bad = (why: string): never => {
    throw new SchemaPinError("discovery_fetch_failed", `refused provider domain: ${why}`);
  };
  if (d.length === 0 || d.length > 253) bad("length");
  const labels = d.split(".");
  if (!labels.every((l) => LABEL.test(l))) bad("not a DNS hostname");
  if (opts.allowLocal) return d;
  if (labels.length < 2) bad("single-label names are not allowed");
  // A numeric last label is an IPv4 literal (or an ambiguous name); no TLD is all digits.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) bad("IP addresses are not allowed");
  if (d === "localhost" || d.endsWith(".localhost")) bad("localhost is not allowed");
  return d;
}

export interface HttpDiscoveryOptions {
  fetch?: typeof fetch;
  /** Whole-request budget per document, headers and body. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest accepted document. Default 64 KiB. */
  maxBytes?: number;
  /** Same-origin redirects followed at most. Default 3. */
  maxRedirects?: number;
  /** Tests only: allow localhost/IP-like domains. */
  allowLocal?: boolean;
  /** Tests only: domain → base URL (e.g. http://127.0.0.1:4321/python) used instead of https://domain. */
  baseUrls?: Readonly<Record<string, string>>;
}

export const WELL_KNOWN_PATH = "/.well-known/schemapin.json";

const fetchFailed = (msg: string): SchemaPinError =>
  new SchemaPinError("discovery_fetch_failed", msg);

async function readBounded(res: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = res.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    await res.body?.cancel();
    throw fetchFailed(`document larger than ${maxBytes} bytes`);
  }
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw fetchFailed(`document larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export class HttpDiscoveryResolver implements DiscoveryResolver {
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxRedirects: number;

  constructor(private readonly opts: HttpDiscoveryOptions = {}) {
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBytes = opts.maxBytes ?? 64 * 1024;
    this.maxRedirects = opts.maxRedirects ?? 3;
  }

  private baseUrl(domain: string): string {
    return this.opts.baseUrls?.[domain]?.replace(/\/+$/, "") ?? `https://${domain}`;
  }

  /** GET a JSON document, following only same-origin redirects. */
  async fetchJson(url: string): Promise<unknown> {
    const origin = new URL(url).origin;
    const signal = AbortSignal.timeout(this.timeoutMs);
    let current = url;
    try {
      for (let hop = 0; ; hop++) {
        const res = await this.fetchImpl(current, {
          method: "GET",
          redirect: "manual",
          signal,
          headers: { accept: "application/json" },
        });
        if (res.type === "opaqueredirect") throw fetchFailed("redirect not followable");
        if (res.status >= 300 && res.status < 400) {
          await res.body?.cancel();
          const location = res.headers.get("location");
          if (!location) throw fetchFailed(`HTTP ${res.status} without Location`);
          if (hop >= this.maxRedirects) throw fetchFailed("too many redirects");
          const next = new URL(location, current);
          if (next.origin !== origin) {
            throw fetchFailed(`redirect to another origin (${next.origin}) refused`);
          }
          current = next.href;
          continue;
        }
        if (res.status !== 200) {
          await res.body?.cancel();
          throw fetchFailed(`HTTP ${res.status} from ${current}`);
        }
        const body = await readBounded(res, this.maxBytes);
        try {
          return JSON.parse(fromUtf8(body));
        } catch {
          throw new SchemaPinError("discovery_invalid", `${current} is not UTF-8 JSON`);
        }
      }
    } catch (e) {
      if (e instanceof SchemaPinError) throw e;
      const reason = signal.aborted ? `timed out after ${this.timeoutMs} ms` : String(e);
      throw fetchFailed(`fetching ${current}: ${reason}`);
    }
  }

  /** The revocation endpoint must be https within the provider's domain (we fail closed). */
  private revocationUrl(domain: string, endpoint: string): string {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      throw new SchemaPinError("discovery_invalid", "revocation_endpoint is not a URL");
    }
    const host = u.hostname.toLowerCase();
    if (u.protocol !== "https:" || (host !== domain && !host.endsWith(`.${domain}`))) {
      throw new SchemaPinError(
        "discovery_invalid",
        "revocation_endpoint must be https within the provider's domain",
      );
    }
    if (this.opts.baseUrls?.[domain] && host === domain) {
      return `${this.baseUrl(domain)}${u.pathname}${u.search}`;
    }
    return u.href;
  }

  async resolve(domainIn: string): Promise<ResolvedProvider> {
    const domain = normalizeDomain(domainIn, { allowLocal: this.opts.allowLocal ?? false });
    const raw = await this.fetchJson(`${this.baseUrl(domain)}${WELL_KNOWN_PATH}`);
    const parsed = wellKnownSchema.safeParse(raw);
    if (!parsed.success) {
      throw new SchemaPinError("discovery_invalid", `malformed discovery document for ${domain}`);
    }
    const discovery = parsed.data;
    let revocation: RevocationDocument | null = null;
    if (discovery.revocation_endpoint !== undefined) {
      // Declared but unreachable is a failure, not "nothing revoked" (the SDKs fail open here).
      const rawRev = await this.fetchJson(
        this.revocationUrl(domain, discovery.revocation_endpoint),
      );
      revocation = parseRevocationDocument(rawRev, domain);
    }
    return { domain, discovery, revocation, source: "well-known" };
  }
}

export function parseRevocationDocument(raw: unknown, domain: string): RevocationDocument {
  const parsed = revocationDocumentSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SchemaPinError("discovery_invalid", `malformed revocation document for ${domain}`);
  }
  if (parsed.data.domain.toLowerCase() !== domain) {
    throw new SchemaPinError(
      "domain_mismatch",
      `revocation document is for ${parsed.data.domain.slice(0, 253)}, not ${domain}`,
    );
  }
  return parsed.data;
}

/** Tries resolvers in order (e.g. an offline trust bundle, then the network). */
export class ChainResolver implements DiscoveryResolver {
  constructor(private readonly resolvers: readonly DiscoveryResolver[]) {}
  async resolve(domain: string): Promise<ResolvedProvider> {
    let last: unknown = new SchemaPinError("discovery_fetch_failed", "no resolver configured");
    for (const r of this.resolvers) {
      try {
        return await r.resolve(domain);
      } catch (e) {
        last = e;
        // Only "not found here" falls through; a bad document or a revocation is final.
        if (!(e instanceof SchemaPinError) || e.code !== "discovery_fetch_failed") throw e;
      }
    }
    throw last;
  }
}
