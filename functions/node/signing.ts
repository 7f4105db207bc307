// How service-held keys sign on Node, by `[security] crypto_provider`:
// - "webcrypto" / "ring" (native): a few signatures at a time go to WebCrypto (one dispatch each
//   onto libuv's thread pool); a burst (an audit batch under load) goes to a worker_threads pool
//   on node:crypto, one message per worker for the whole burst. Each path wins on its side of
//   the threshold: WebCrypto costs the main thread ~15 µs per signature, the pool ~2 µs per
//   signature plus a message round trip that dominates when the batch is one or two events.
//   Byte-identical either way (Ed25519 is deterministic; test/crypto/node-signing.test.ts).
// - "noble": the pure-JS reference signer (portable, slow).
import type { SigilConfig } from "../../shared/config";
import { createReferenceSigner, createSigner, type Signer } from "../../shared/crypto";
import { SignerPool } from "./signer-pool";

export interface NodeSigning {
  factory: (secretKey: Uint8Array, kid: string) => Promise<Signer>;
  close(): Promise<void>;
}

/** At most this many signatures in a tick go to WebCrypto; more go to the pool, all of them. */
export const DIRECT_SIGNS_PER_TICK = 4;

export function nodeSigning(provider: SigilConfig["security"]["crypto_provider"]): NodeSigning {
  if (provider === "noble") {
    return { factory: (sk, kid) => createReferenceSigner(sk, kid), close: async () => {} };
  }
  const pool = new SignerPool();
  return {
    factory: async (sk, kid) => {
      const [pooled, direct] = await Promise.all([
        pool.createSigner(sk, kid),
        createSigner(sk, kid),
      ]);
      // Decided per tick, for all of it: a burst goes to the pool whole.
      let tick: { message: Uint8Array; done: (p: Promise<Uint8Array>) => void }[] = [];
      const flush = () => {
        const jobs = tick;
        tick = [];
        const via = jobs.length <= DIRECT_SIGNS_PER_TICK ? direct : pooled;
        for (const j of jobs) j.done(via.sign(j.message));
      };
      return {
        kid: pooled.kid,
        publicKey: pooled.publicKey,
        sign(message: Uint8Array): Promise<Uint8Array> {
          if (tick.length === 0) queueMicrotask(flush);
          return new Promise((done) => tick.push({ message, done }));
        },
      };
    },
    close: () => pool.close(),
  };
}
