// The Durable Object harness for the audit contract suite: the AuditObject runs in workerd with the
// suite's signing key (the test subclass takes the seed; the production object decrypts its service
// key from the KeysObject), and the tamper hooks rewrite its SQLite storage directly.
import { type AuditLogPort, nodeKey, type Signer } from "../../../shared/audit";
import { equalBytes } from "../../../shared/encoding";
import { seedOf, webcryptoSigner } from "../../audit/support/crypto";
import type { Harness } from "../../audit/support/harness";
import { disposeWorkerd, freshName, remotePort, workerd } from "./workerd";

/** The suite's signers are made from seedOf(n); find n so workerd can make the same key. */
async function seedFor(signer: Signer): Promise<Uint8Array> {
  for (let n = 0; n < 256; n++) {
    const s = await webcryptoSigner(seedOf(n), signer.kid);
    if (equalBytes(s.publicKey, signer.publicKey)) return seedOf(n);
  }
  throw new Error("the durable-object audit harness only knows signers made from seedOf(n)");
}

export function durableObjectHarness(): Harness {
  return {
    name: "durable-object",
    async build({ signer, chain }) {
      const name = freshName("audit");
      const w = await workerd();
      const hook = (method: string, args: unknown[]) =>
        w.call({ port: "audit-hook", name, method, args });
      await hook("useTestSigner", [await seedFor(signer), signer.kid]);
      const c = chain ?? "default";
      const log = remotePort<AuditLogPort>("audit", name, {
        chain: c,
        kid: signer.kid,
        props: { chain: c },
      });
      return {
        log,
        async tamper(i, fn) {
          const current = (await hook("rawRecord", [i])) as
            | { json: string; sums?: string }
            | undefined;
          await hook("setRecord", [i, fn(current) ?? null]);
        },
        async tamperNode(ref, hash) {
          await hook("setNode", [nodeKey(ref), hash]);
        },
      };
    },
    cleanup: disposeWorkerd,
  };
}
