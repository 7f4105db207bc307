// SchemaPin's error vocabulary (the reference SDKs' codes) plus a typed error that carries one.
export const SCHEMAPIN_ERROR_CODES = [
  "signature_invalid",
  "key_not_found",
  "key_revoked",
  "key_pin_mismatch",
  "discovery_fetch_failed",
  "discovery_invalid",
  "domain_mismatch",
  "schema_canonicalization_failed",
  "canonicalization_unsupported",
  // SDK v1.4 bundle code: a signed trust bundle past (or with an unparseable) expires_at.
  "bundle_expired",
] as const;

export type SchemaPinErrorCode = (typeof SCHEMAPIN_ERROR_CODES)[number];

/** Discovery refused to go somewhere: a hostile or misconfigured provider, worth a security event. */
export interface DiscoveryRefusal {
  /** The provider domain or URL host that was refused. */
  host: string;
  /** The resolved (or literal) address, when the refusal is about one. */
  address?: string;
  /** What it is: an address class ("loopback", "cloud-metadata", ...), "ip-literal", "special-use-name", ... */
  kind: string;
}

export class SchemaPinError extends Error {
  override readonly name = "SchemaPinError";
  constructor(
    readonly code: SchemaPinErrorCode,
    message: string,
    readonly refusal?: DiscoveryRefusal,
  ) {
    super(message);
  }
}
