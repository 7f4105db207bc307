// Discovery of `https://{domain}/.well-known/schemapin.json` and of the standalone revocation
// document it may point to. Bounded in time and size, https only, redirects followed only within
// the same origin. Every URL fetched (redirect targets and revocation endpoints included) must have
// a DNS name as its host that passes `normalizeDomain`: IP literals in any notation the URL parser
// accepts, localhost and special-use names never reach the fetch. Which *addresses* a name may
// resolve to is the fetch's business: the Node adapter (functions/node/discovery-fetch.ts)
// resolves, checks every answer against `AddressPolicy` and pins the connection; on the edge the
// platform's fetch has no DNS API (see functions/edge/compose.ts).
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

/**
 * Port: one HTTP GET without following redirects. The global fetch fits; the Node adapter adds
 * resolution, the address check and connection pinning. It may throw a SchemaPinError (kept as is).
 */
export type DiscoveryFetch = (
  url: string,
  init: {
    method: "GET";
    redirect: "manual";
    signal: AbortSignal;
    headers: Record<string, string>;
  },
) => Promise<Response>;

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The WHATWG URL parser reads a host whose last label is a number (decimal, octal or 0x-hex) as
 * an IPv4 address: `https://1.2.3.0x7f/` is 1.2.3.127. Such a name is an IP literal, not a domain.
 */
const NUMERIC_LABEL = /^(?:[0-9]+|0x[0-9a-f]*)$/;

/**
 * Names that are never public DNS (RFC 6761, 6762, 8375, 9476, ICANN's .internal and the
 * never-delegated .home/.corp/.lan). `.example` and `.test` stay allowed: they resolve nowhere
 * publicly and tests use them.
 */
const SPECIAL_USE_SUFFIXES = [
  "localhost",
  "localdomain",
  "local",
  "internal",
  "intranet",
  "lan",
  "home",
  "corp",
  "home.arpa",
  "onion",
  "alt",
  "invalid",
];

/**
 * Validates and lowercases a provider domain. Rejects IP literals (in any notation the URL parser
 * accepts), localhost, special-use and single-label names unless `allowLocal` (tests only).
 */
export function normalizeDomain(domain: string, opts: { allowLocal?: boolean } = {}): string {
  const d = domain.toLowerCase();
  const bad = (why: string, kind?: string): never => {
    throw new SchemaPinError(
      "discovery_fetch_failed",
      `refused provider domain: ${why}`,
      kind ? { host: d.slice(0, 253), kind } : undefined,
    );
  };
  if (d.length === 0 || d.length > 253) bad("length");
  if (d.includes(":") || d.startsWith("[")) bad("IP addresses are not allowed", "ip-literal");
  const labels = d.split(".");
  if (!labels.every((l) => LABEL.test(l))) bad("not a DNS hostname");
  if (opts.allowLocal) return d;
  if (NUMERIC_LABEL.test(labels[labels.length - 1]!)) {
    bad(
      "IP addresses are not allowed (a numeric last label makes the name an IPv4 literal)",
      "ip-literal",
    );
  }
  const special = SPECIAL_USE_SUFFIXES.find((s) => d === s || d.endsWith(`.${s}`));
  if (special !== undefined) {
    bad(`.${special} names are not public DNS names`, "special-use-name");
  }
  if (labels.length < 2) bad("single-label names are not allowed", "single-label-name");
  return d;
}

export interface HttpDiscoveryOptions {
  /** Default: the global fetch (no address check; the compositions always pass their own). */
  fetch?: DiscoveryFetch;
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
  private readonly fetchImpl: DiscoveryFetch;
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

  /**
   * Every URL discovery fetches: https on the default port, no credentials, and a host that is a
   * DNS name passing `normalizeDomain` exactly as the URL parser left it (so no IP literal in any
   * notation reaches the fetch). Tests' mapped base URLs are exempt.
   */
  private checkUrl(u: URL, mapped: boolean): void {
    if (mapped) return;
    if (u.protocol !== "https:" || u.port !== "" || u.username !== "" || u.password !== "") {
      throw fetchFailed(`refused URL ${u.origin}: discovery is https on port 443 only`);
    }
    const host = normalizeDomain(u.hostname, { allowLocal: this.opts.allowLocal ?? false });
    if (host !== u.hostname) throw fetchFailed(`refused URL host ${u.hostname.slice(0, 253)}`);
  }

  /** GET a JSON document, following only same-origin redirects. */
  async fetchJson(url: string, opts: { mapped?: boolean } = {}): Promise<unknown> {
    const mapped = opts.mapped ?? false;
    const first = new URL(url);
    this.checkUrl(first, mapped);
    const origin = first.origin;
    const signal = AbortSignal.timeout(this.timeoutMs);
    let current = first.href;
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
          // Same origin, but the target goes through the same checks (and the fetch's own).
          this.checkUrl(next, mapped);
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

  /**
   * The revocation endpoint must be https on the default port within the provider's domain (we
   * fail closed). Returns the URL to fetch and whether it is a tests' mapped base.
   */
  private revocationUrl(domain: string, endpoint: string): { url: string; mapped: boolean } {
    let u: URL;
    try {
      u = new URL(endpoint);
    } catch {
      throw new SchemaPinError("discovery_invalid", "revocation_endpoint is not a URL");
    }
    const host = u.hostname.toLowerCase();
    if (
      u.protocol !== "https:" ||
      u.port !== "" ||
      (host !== domain && !host.endsWith(`.${domain}`))
    ) {
      throw new SchemaPinError(
        "discovery_invalid",
        "revocation_endpoint must be https (port 443) within the provider's domain",
      );
    }
    if (this.opts.baseUrls?.[domain] && host === domain) {
      return { url: `${this.baseUrl(domain)}${u.pathname}${u.search}`, mapped: true };
    }
    return { url: u.href, mapped: false };
  }

  async resolve(domainIn: string): Promise<ResolvedProvider> {
    const domain = normalizeDomain(domainIn, { allowLocal: this.opts.allowLocal ?? false });
    const mapped = this.opts.baseUrls?.[domain] !== undefined;
    const raw = await this.fetchJson(`${this.baseUrl(domain)}${WELL_KNOWN_PATH}`, { mapped });
    const parsed = wellKnownSchema.safeParse(raw);
    if (!parsed.success) {
      throw new SchemaPinError("discovery_invalid", `malformed discovery document for ${domain}`);
    }
    const discovery = parsed.data;
    let revocation: RevocationDocument | null = null;
    if (discovery.revocation_endpoint !== undefined) {
      // Declared but unreachable is a failure, not "nothing revoked" (the SDKs fail open here).
      const rev = this.revocationUrl(domain, discovery.revocation_endpoint);
      revocation = parseRevocationDocument(
        await this.fetchJson(rev.url, { mapped: rev.mapped }),
        domain,
      );
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
