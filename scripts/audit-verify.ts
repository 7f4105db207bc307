// Offline audit verifier: checks an NDJSON export (GET /v1/audit/export) with nothing but the
// service's public keys (GET /.well-known/sigil/keys, a JWK Set).
//   npx tsx scripts/audit-verify.ts export.ndjson --keys keys.json
// Exit status: 0 valid, 1 invalid, 2 unusable input.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { defineCommand, runMain } from "citty";
import { installNodeSha256 } from "../platform/node/native-hash";
import {
  type AuditKeyResolver,
  resolverFromJwks,
  type VerifyFn,
  verifyExport,
} from "../shared/audit";
import { toHex } from "../shared/encoding";

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
