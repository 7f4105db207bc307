// Discovery as the `[tofu]` settings configure it, one definition for the Node and edge
// compositions: verified trust bundles first (offline, no fetch for a domain they vouch for), then
// the network through the composition's fetch, unless `discovery = "bundles-only"`.
import { TrustBundleResolver, verifyTrustBundle } from "./bundle";
import {
  ChainResolver,
  type DiscoveryResolver,
  normalizeDomain,
  type ResolvedProvider,
} from "./discovery";
import type { TrustBundle } from "./documents";
import { SchemaPinError } from "./errors";
import { FINGERPRINT_RE, parsePublicKeyPem } from "./keys";

/** `[tofu] bundle_authorities` entries (fingerprints or PEM keys) as fingerprints. */
export function authorityFingerprints(entries: readonly string[]): string[] {
  return entries.map((e, i) => {
    if (FINGERPRINT_RE.test(e)) return e;
    try {
      return parsePublicKeyPem(e).fingerprint;
    } catch (err) {
      throw new Error(`[tofu] bundle_authorities[${i}]: ${(err as Error).message}`);
    }
  });
}

export interface BundleSource {
  /** Where it came from, for the start-up error (a file path, or "trust_bundles[2]"). */
  source: string;
  raw: unknown;
}

/**
 * Verifies every configured bundle. Fails closed: a bundle that does not verify (untrusted
 * authority, bad signature, expired) stops start-up rather than silently sending its domains to
 * the network.
 */
export async function loadTrustBundles(
  sources: readonly BundleSource[],
  authorities: readonly string[],
  now: number,
): Promise<TrustBundle[]> {
  const trustedAuthorities = authorityFingerprints(authorities);
  const out: TrustBundle[] = [];
  for (const { source, raw } of sources) {
    try {
      out.push(await verifyTrustBundle(raw, { trustedAuthorities, now }));
    } catch (e) {
      const why = e instanceof SchemaPinError ? `${e.code}: ${e.message}` : String(e);
      throw new Error(`[tofu] trust_bundles: ${source} is not usable (${why})`);
    }
  }
  return out;
}

/** The last resort of `discovery = "bundles-only"`: never fetches. */
export class OfflineResolver implements DiscoveryResolver {
  async resolve(domainIn: string): Promise<ResolvedProvider> {
    const domain = normalizeDomain(domainIn, { allowLocal: true });
    throw new SchemaPinError(
      "discovery_fetch_failed",
      `no trust bundle vouches for ${domain} and network discovery is off ([tofu] discovery = "bundles-only")`,
    );
  }
}

export interface ConfiguredResolverOptions {
  mode: "network" | "bundles-only";
  bundles: readonly TrustBundle[];
  /** The network resolver (ignored with "bundles-only"). */
  network: DiscoveryResolver;
  now?: () => number;
}

export function configuredResolver(opts: ConfiguredResolverOptions): DiscoveryResolver {
  const last = opts.mode === "network" ? opts.network : new OfflineResolver();
  if (opts.bundles.length === 0) return last;
  return new ChainResolver([new TrustBundleResolver(opts.bundles, opts.now), last]);
}
