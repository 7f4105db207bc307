// The fetch SchemaPin discovery uses on Node (docs/schemapin.md, "Discovery without trusting the
// network"): resolve the name ourselves, refuse it unless every answer is an address the policy
// allows (public, or in the operator's allow-list, never this host's own), then connect only to
// the addresses we checked. The socket's `lookup` hands back those addresses and nothing else, so
// there is no second resolution a rebinding DNS server could answer differently. No redirects are
// followed here (the shared resolver decides, and sends a redirect's target back through this
// fetch); the shared resolver bounds the body and the time, and the abort signal ends everything.
import type { LookupAddress } from "node:dns";
import { Resolver, lookup as systemLookup } from "node:dns/promises";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import { networkInterfaces } from "node:os";
import { Readable } from "node:stream";
import {
  AddressPolicy,
  type DiscoveryFetch,
  parseIp,
  parseResolverAddress,
  SchemaPinError,
} from "../../shared/schemapin";

export interface PinnedFetchOptions {
  /** `[tofu] discovery_allow_cidrs`. */
  allowCidrs?: readonly string[];
  /**
   * `[tofu] discovery_resolvers`; empty: the system resolver (getaddrinfo, /etc/hosts included).
   */
  resolvers?: readonly string[];
  /**
   * Per-query DNS timeout with configured resolvers. Default 2000 ms (the signal bounds it too).
   */
  dnsTimeoutMs?: number;
  /** Tests only: extra trusted CA certificates (PEM) for an HTTPS test server. */
  ca?: string;
  /** The host's own addresses; default: every interface's, read at each fetch. */
  hostAddresses?: () => string[];
}

/** More answers than this are not looked at (and not connected to). */
const MAX_ANSWERS = 16;
const NULL_BODY = new Set([101, 204, 205, 304]);

const refused = (message: string, refusal?: SchemaPinError["refusal"]): SchemaPinError =>
  new SchemaPinError("discovery_fetch_failed", message, refusal);

function ownAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

const abortable = <T>(p: Promise<T>, signal: AbortSignal): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });

/** A Node IncomingMessage as a Web Response; aborting the signal ends the body too. */
function toResponse(res: IncomingMessage, signal: AbortSignal): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  }
  const status = res.statusCode ?? 0;
  signal.addEventListener("abort", () => res.destroy(new Error("aborted")), { once: true });
  if (NULL_BODY.has(status)) {
    res.destroy();
    return new Response(null, { status, headers });
  }
  return new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status, headers });
}

export class PinnedDiscoveryFetch {
  private readonly policy: AddressPolicy;
  private readonly servers: string[];

  constructor(private readonly opts: PinnedFetchOptions = {}) {
    this.policy = new AddressPolicy({ allow: opts.allowCidrs ?? [] });
    this.servers = (opts.resolvers ?? []).map((r) => {
      const a = parseResolverAddress(r);
      if (!a) throw new Error(`discovery_resolvers: "${r}" is not an address`);
      return a.address.includes(":") ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    });
  }

  /** The shared resolver's port. */
  readonly fetch: DiscoveryFetch = (url, init) => this.get(url, init.signal, init.headers);

  /** Every address `host` resolves to (A and AAAA), through the configured or system resolver. */
  private async resolveHost(host: string, signal: AbortSignal): Promise<string[]> {
    if (this.servers.length === 0) {
      const all = await abortable(systemLookup(host, { all: true, verbatim: true }), signal);
      return all.map((a) => a.address);
    }
    const r = new Resolver({ timeout: this.opts.dnsTimeoutMs ?? 2000, tries: 2 });
    r.setServers(this.servers);
    const cancel = () => r.cancel();
    signal.addEventListener("abort", cancel, { once: true });
    try {
      const [v4, v6] = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
      const found = [
        ...(v4.status === "fulfilled" ? v4.value : []),
        ...(v6.status === "fulfilled" ? v6.value : []),
      ];
      if (found.length === 0) {
        if (signal.aborted) throw signal.reason;
        const e = [v4, v6].find((x): x is PromiseRejectedResult => x.status === "rejected");
        throw refused(
          `cannot resolve ${host}: ${(e?.reason as Error | undefined)?.message ?? "no addresses"}`,
        );
      }
      return found;
    } finally {
      signal.removeEventListener("abort", cancel);
    }
  }

  /** The addresses to connect to: all answers must pass, or the name is refused. */
  private async checkedAddresses(host: string, signal: AbortSignal): Promise<LookupAddress[]> {
    const literal = parseIp(host);
    const answers = literal ? [host] : await this.resolveHost(host, signal);
    if (answers.length === 0) throw refused(`${host} has no addresses`);
    const own = (this.opts.hostAddresses ?? ownAddresses)();
    const ok: LookupAddress[] = [];
    for (const a of answers.slice(0, MAX_ANSWERS)) {
      const v = this.policy.check(a, own);
      if (!v.ok) {
        // One bad answer refuses the name: a public answer beside a private one is a trap.
        throw refused(
          `${literal ? "address" : `${host} resolves to an address that`} is refused: ${v.reason}`,
          { host, address: v.address, kind: v.class },
        );
      }
      if (!ok.some((x) => x.address === v.address))
        ok.push({ address: v.address, family: v.family });
    }
    return ok;
  }

  private async get(
    urlText: string,
    signal: AbortSignal,
    headers: Record<string, string>,
  ): Promise<Response> {
    const url = new URL(urlText);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw refused(`refused ${url.protocol} URL`);
    }
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const addresses = await this.checkedAddresses(host, signal);
    // The socket resolves `host` through this function only: it answers with the checked
    // addresses (all of them for happy eyeballs, else the first of the asked family).
    const lookup: LookupFunction = (name, options, callback) => {
      if (name !== host) {
        callback(refused(`unexpected lookup of ${name}`), "", 4);
        return;
      }
      const family = options.family === 4 || options.family === 6 ? options.family : 0;
      const usable = addresses.filter((a) => family === 0 || a.family === family);
      if (usable.length === 0) {
        callback(refused(`${host} has no checked IPv${family} address`), "", 4);
        return;
      }
      if (options.all) callback(null, usable);
      else callback(null, usable[0]!.address, usable[0]!.family);
    };
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return await new Promise<Response>((resolve, reject) => {
      const req = send(
        url,
        {
          method: "GET",
          headers: { ...headers, "user-agent": "sigil-schemapin" },
          lookup,
          // A fresh connection per request: a pooled socket could outlive the check.
          agent: false,
          signal,
          maxHeaderSize: 16 * 1024,
          ...(url.protocol === "https:"
            ? { minVersion: "TLSv1.2" as const, ...(this.opts.ca ? { ca: this.opts.ca } : {}) }
            : {}),
        },
        (res) => {
          try {
            resolve(toResponse(res, signal));
          } catch (e) {
            // e.g. a status the Fetch API cannot represent
            res.destroy();
            reject(e);
          }
        },
      );
      req.on("error", reject);
      req.end();
    });
  }
}
