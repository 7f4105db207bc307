// Offline audit verifier: checks an NDJSON export (GET /v1/audit/export) with nothing but the
// service's public keys (GET /.well-known/sigil/keys, a JWK Set).
//   npx tsx scripts/audit-verify.ts export.ndjson --keys keys.json
// Exit status: 0 valid, 1 invalid, 2 unusable input.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { defineCommand, runMain } from "citty";
import { z } from "zod";
import { installNodeSha256 } from "../platform/node/native-hash";
import { type AuditKeyResolver, type VerifyFn, verifyExport } from "../shared/audit";
import { fromBase64Url, toHex } from "../shared/encoding";

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

/** WebCrypto Ed25519 verification with imported keys cached per public key. */
export function webCryptoVerify(): VerifyFn {
  const cache = new Map<string, Promise<CryptoKey>>();
  return async (publicKey, message, signature) => {
    const id = toHex(publicKey);
    let key = cache.get(id);
    if (!key) {
      key = crypto.subtle.importKey("raw", new Uint8Array(publicKey), { name: "Ed25519" }, false, [
        "verify",
      ]);
      cache.set(id, key);
    }
    try {
      return await crypto.subtle.verify(
        { name: "Ed25519" },
        await key,
        new Uint8Array(signature),
        new Uint8Array(message),
      );
    } catch {
      return false;
    }
  };
}

async function* textOf(path: string): AsyncGenerator<string> {
  const stream = path === "-" ? process.stdin : createReadStream(path);
  stream.setEncoding("utf8");
  for await (const chunk of stream) yield chunk as string;
}

const main = defineCommand({
  meta: { name: "audit-verify", description: "Verify a Sigil audit export offline" },
  args: {
    file: { type: "positional", description: "NDJSON export file, or - for stdin", required: true },
    keys: { type: "string", description: "JWK Set with the service's public keys", required: true },
    json: { type: "boolean", description: "print the report as JSON", default: false },
  },
  async run({ args }) {
    installNodeSha256();
    let keys: AuditKeyResolver;
    try {
      keys = resolverFromJwks(JSON.parse(await readFile(args.keys, "utf8")));
    } catch (e) {
      console.error(`cannot read keys: ${(e as Error).message}`);
      process.exit(2);
    }
    const t0 = performance.now();
    const report = await verifyExport(textOf(args.file), { keys, verify: webCryptoVerify() });
    const secs = (performance.now() - t0) / 1000;
    if (args.json) console.log(JSON.stringify(report, null, 2));
    else if (report.valid) {
      const cp = report.checkpoint
        ? `; checkpoint at ${report.checkpoint.treeSize} ${report.checkpoint.verified ? "verified" : "NOT verified"}`
        : "";
      console.log(
        `valid: ${report.checked} events [${report.from}, ${report.to}) of chain ${report.chain}${cp} (${(report.checked / secs).toFixed(0)} events/s)`,
      );
    } else {
      const f = report.firstInvalid!;
      console.log(
        `INVALID at index ${f.index}: ${f.reason}${f.field ? ` (field ${f.field})` : ""}; ${report.checked} verified before it`,
      );
    }
    process.exit(
      report.valid ? 0 : report.checked === 0 && report.firstInvalid?.code === "malformed" ? 2 : 1,
    );
  },
});

if (import.meta.url === `file://${process.argv[1]}`) await runMain(main);
