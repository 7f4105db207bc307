// The service's public keys as an offline verifier reads them: a JWK Set (GET
// /.well-known/sigil/keys) turned into an AuditKeyResolver (docs/audit.md "Verifying offline").
import { z } from "zod";
import { fromBase64Url } from "../encoding";
import type { AuditKeyResolver } from "./ports";

// Validity is read leniently: JWT-style nbf/exp (seconds), or RFC 3339 validFrom/validUntil
// (also notBefore/notAfter), and a revoked key stays valid for what it signed before its
// revocation: `revoked_at` (seconds, as /.well-known/sigil/keys publishes it) or RFC 3339 revokedAt.
const JwkSchema = z.looseObject({
  kty: z.literal("OKP"),
  crv: z.literal("Ed25519"),
  x: z.string(),
  kid: z.string().min(1),
  nbf: z.number().optional(),
  exp: z.number().optional(),
  validFrom: z.string().optional(),
  validUntil: z.string().optional(),
  notBefore: z.string().optional(),
  notAfter: z.string().optional(),
  status: z.string().optional(),
  revokedAt: z.string().optional(),
  revoked_at: z.number().optional(),
});
const JwksSchema = z.object({ keys: z.array(z.unknown()) });

export function resolverFromJwks(jwks: unknown): AuditKeyResolver {
  const keys = JwksSchema.parse(jwks)
    .keys.map((k) => JwkSchema.safeParse(k))
    .flatMap((r) => (r.success ? [r.data] : []));
  return async (kid, timestamp) => {
    const k = keys.find((x) => x.kid === kid);
    if (!k) return undefined;
    let publicKey: Uint8Array;
    try {
      publicKey = fromBase64Url(k.x);
    } catch {
      return undefined;
    }
    if (publicKey.length !== 32) return undefined;
    const t = Date.parse(timestamp);
    const from = k.nbf !== undefined ? k.nbf * 1000 : Date.parse(k.validFrom ?? k.notBefore ?? "");
    const until = k.exp !== undefined ? k.exp * 1000 : Date.parse(k.validUntil ?? k.notAfter ?? "");
    const revoked =
      k.revoked_at !== undefined
        ? k.revoked_at * 1000
        : k.revokedAt
          ? Date.parse(k.revokedAt)
          : k.status === "revoked"
            ? -Infinity
            : NaN;
    const validAt =
      Number.isFinite(t) &&
      (Number.isNaN(from) || t >= from) &&
      (Number.isNaN(until) || t < until) &&
      (Number.isNaN(revoked) || t < revoked);
    return { publicKey, validAt };
  };
}
