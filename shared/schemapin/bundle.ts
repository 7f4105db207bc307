// Trust bundles for offline use: ECDSA-P256-SHA256 (single hash) by a bundle authority over the
// schemapin-v1 canonical bundle with "signature" set to "". We canonicalize the bundle exactly
// as received (not a re-serialization), so any added or changed field breaks the signature.
import { canonicalSchemaBytes } from "./canonical";
import {
  type DiscoveryResolver,
  normalizeDomain,
  parseRevocationDocument,
  type ResolvedProvider,
} from "./discovery";
import { type TrustBundle, trustBundleSchema } from "./documents";
import { SchemaPinError } from "./errors";
import { parsePublicKeyPem } from "./keys";
import { decodeSignatureB64, verifyEcdsaP256Der } from "./signatures";

export interface VerifyBundleOptions {
  /** Fingerprints (`sha256:…`) of authority keys we trust. The embedded key must be one of them. */
  trustedAuthorities: readonly string[];
  /** Clock in ms since epoch. */
  now: number;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$/;

export function parseRfc3339(s: string): number | null {
  if (!RFC3339.test(s)) return null;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : null;
}

/** Verifies a signed trust bundle; returns it parsed. Throws SchemaPinError with the reason. */
export async function verifyTrustBundle(
  raw: unknown,
  opts: VerifyBundleOptions,
): Promise<TrustBundle> {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new SchemaPinError("discovery_invalid", "trust bundle is not a JSON object");
  }
  const parsed = trustBundleSchema.safeParse(raw);
  if (!parsed.success) throw new SchemaPinError("discovery_invalid", "malformed trust bundle");
  const bundle = parsed.data;

  const authority = parsePublicKeyPem(bundle.bundle_authority.public_key_pem);
  if (authority.algorithm !== "ES256" || !opts.trustedAuthorities.includes(authority.fingerprint)) {
    throw new SchemaPinError(
      "key_not_found",
      `bundle authority ${bundle.bundle_authority.kid.slice(0, 64)} (${authority.fingerprint}) is not trusted`,
    );
  }
  if (bundle.expires_at !== undefined) {
    const exp = parseRfc3339(bundle.expires_at);
    if (exp === null) throw new SchemaPinError("bundle_expired", "unparseable expires_at");
    if (opts.now > exp) throw new SchemaPinError("bundle_expired", "trust bundle has expired");
  }
  const signingInput = canonicalSchemaBytes({ ...(raw as Record<string, unknown>), signature: "" });
  const sig = decodeSignatureB64(bundle.signature);
  if (!(await verifyEcdsaP256Der(authority, signingInput, sig))) {
    throw new SchemaPinError("signature_invalid", "trust bundle signature does not verify");
  }
  return bundle;
}

/** Serves discovery and revocation documents from verified trust bundles (offline). */
export class TrustBundleResolver implements DiscoveryResolver {
  /**
   * `bundles` must have been verified (`verifyTrustBundle`). `now` re-checks `expires_at` on every
   * lookup, so a bundle that expires while the service runs stops vouching for its domains.
   */
  constructor(
    private readonly bundles: readonly TrustBundle[],
    private readonly now: () => number = Date.now,
  ) {}

  async resolve(domainIn: string): Promise<ResolvedProvider> {
    const domain = normalizeDomain(domainIn, { allowLocal: true });
    let expired: string | null = null;
    for (const b of this.bundles) {
      const doc = b.documents.find((d) => d.domain.toLowerCase() === domain);
      if (!doc) continue;
      const exp = b.expires_at === undefined ? null : parseRfc3339(b.expires_at);
      if (b.expires_at !== undefined && (exp === null || this.now() > exp)) {
        expired = b.expires_at.slice(0, 64);
        continue;
      }
      const { domain: _d, ...discovery } = doc;
      const rev = b.revocations.find((r) => r.domain.toLowerCase() === domain);
      return {
        domain,
        discovery,
        revocation: rev ? parseRevocationDocument(rev, domain) : null,
        source: "trust-bundle",
      };
    }
    // "Not here": the chain may try the next resolver (an expired bundle vouches for nothing).
    throw new SchemaPinError(
      "discovery_fetch_failed",
      expired === null
        ? `no bundled discovery for ${domain}`
        : `the trust bundle for ${domain} expired at ${expired}`,
    );
  }
}
