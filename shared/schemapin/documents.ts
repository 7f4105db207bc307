// Wire formats SchemaPin providers publish, with bounded sizes. Unknown fields are tolerated in
// discovery documents (forward compatibility) but never interpreted.
import { z } from "zod";
import { MAX_PEM_LENGTH } from "./keys";

const shortText = z.string().max(512);
const timestamp = z.string().max(64);
/** revoked_keys entries are compared verbatim (lowercased); malformed ones simply never match. */
const fingerprintText = z.string().max(128);

export const wellKnownSchema = z.object({
  schema_version: shortText,
  developer_name: shortText,
  public_key_pem: z.string().min(1).max(MAX_PEM_LENGTH),
  revoked_keys: z.array(fingerprintText).max(10_000).optional(),
  contact: shortText.optional(),
  revocation_endpoint: z.string().max(2048).optional(),
});
export type WellKnownDocument = z.infer<typeof wellKnownSchema>;

export const revocationReasonSchema = z.enum([
  "key_compromise",
  "superseded",
  "cessation_of_operation",
  "privilege_withdrawn",
]);

export const revokedKeySchema = z.object({
  fingerprint: fingerprintText,
  revoked_at: timestamp,
  reason: revocationReasonSchema,
});

export const revocationDocumentSchema = z.object({
  schemapin_version: shortText,
  domain: z.string().max(253),
  updated_at: timestamp,
  revoked_keys: z.array(revokedKeySchema).max(10_000),
});
export type RevocationDocument = z.infer<typeof revocationDocumentSchema>;

/** A bundled discovery document: the well-known fields flattened beside `domain`. */
export const bundledDiscoverySchema = wellKnownSchema.extend({ domain: z.string().max(253) });

export const trustBundleSchema = z.object({
  schemapin_bundle_version: shortText,
  created_at: timestamp,
  documents: z.array(bundledDiscoverySchema).max(10_000),
  revocations: z.array(revocationDocumentSchema).max(10_000),
  bundle_authority: z.object({ kid: shortText, public_key_pem: z.string().max(MAX_PEM_LENGTH) }),
  signed_at: timestamp,
  expires_at: timestamp.optional(),
  signature: z.string().max(128),
});
export type TrustBundle = z.infer<typeof trustBundleSchema>;

export const normalizeFingerprint = (f: string): string => f.trim().toLowerCase();
