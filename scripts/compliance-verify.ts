// Offline compliance report verifier (docs/compliance.md "Verifying a report"): checks a report's
// signature, its checkpoint, every cited event's inclusion proof and, given a newer checkpoint and
// the consistency proof to it, that the log was not rewritten since. Needs only the service's
// public keys (GET /.well-known/sigil/keys).
//   npx tsx scripts/compliance-verify.ts report.json --keys keys.json \
//     [--checkpoint newer.txt --consistency proof.json]
// Exit status: 0 valid, 1 invalid, 2 unusable input.
import { readFile } from "node:fs/promises";
import { defineCommand, runMain } from "citty";
import { installNodeSha256 } from "../platform/node/native-hash";
import { resolverFromJwks } from "../shared/audit";
import { verifyReport } from "../shared/compliance";
import { webCryptoVerify } from "./audit-verify";

const main = defineCommand({
  meta: { name: "compliance-verify", description: "Verify a Sigil compliance report offline" },
  args: {
    file: {
      type: "positional",
      description: "report JSON (GET /v1/compliance/reports/:id)",
      required: true,
    },
    keys: { type: "string", description: "JWK Set with the service's public keys", required: true },
    checkpoint: {
      type: "string",
      description: "a newer signed checkpoint (GET /v1/audit/checkpoint .checkpoint)",
    },
    consistency: {
      type: "string",
      description: "GET /v1/audit/proofs/consistency?from=<report size>&to=<newer size>",
    },
  },
  async run({ args }) {
    installNodeSha256();
    let report: { kid?: unknown; generatedAt?: unknown };
    let publicKey: Uint8Array;
    let newer: { note: string; proof: string[] } | undefined;
    try {
      report = JSON.parse(await readFile(args.file, "utf8")) as typeof report;
      const keys = resolverFromJwks(JSON.parse(await readFile(args.keys, "utf8")));
      const k = await keys(String(report.kid), String(report.generatedAt));
      if (!k) throw new Error(`no key ${String(report.kid)} in the key set`);
      if (!k.validAt)
        throw new Error(`key ${String(report.kid)} was not valid when the report was signed`);
      publicKey = k.publicKey;
      if ((args.checkpoint === undefined) !== (args.consistency === undefined))
        throw new Error("--checkpoint and --consistency go together");
      if (args.checkpoint !== undefined && args.consistency !== undefined) {
        const note = await readFile(args.checkpoint, "utf8");
        const cons = JSON.parse(await readFile(args.consistency, "utf8")) as { proof?: unknown };
        if (!Array.isArray(cons.proof) || !cons.proof.every((p) => typeof p === "string"))
          throw new Error("consistency proof has no proof array");
        newer = { note, proof: cons.proof };
      }
    } catch (e) {
      console.error(`unusable input: ${(e as Error).message}`);
      process.exit(2);
    }
    const r = await verifyReport(report, {
      publicKey,
      verify: webCryptoVerify(),
      ...(newer ? { newer } : {}),
    });
    if (r.valid) console.log(`valid${newer ? "; consistent with the newer checkpoint" : ""}`);
    else for (const e of r.errors) console.log(`INVALID: ${e}`);
    process.exit(r.valid ? 0 : 1);
  },
});

if (import.meta.url === `file://${process.argv[1]}`) await runMain(main);
