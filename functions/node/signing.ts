// How service-held keys sign on Node, by `[security] crypto_provider`:
// - "webcrypto" / "ring" (native): a few signatures at a time are signed right here with
//   node:crypto's one-shot sign (~21 µs each); a burst (an audit batch under load) goes to a
//   worker_threads pool, one message per worker for the whole burst. Signing a few inline costs the
//   main thread a little more than dispatching them to the thread pool (WebCrypto, ~11 µs each),
//   but saves the wake-ups and the hop, which on a busy 2-core machine were ~150 µs on the path of
//   every audited request (A/B at 3 connections under appendfsync always: +3–9% req/s).
//   Byte-identical either way (Ed25519 is deterministic; test/crypto/node-signing.test.ts).
// - "noble": the pure-JS reference signer (portable, slow).
import { createPrivateKey, sign as oneShotSign } from "node:crypto";
import type { SigilConfig } from "../../shared/config";
import { createReferenceSigner, ed25519Pkcs8, type Signer } from "../../shared/crypto";
import { SignerPool } from "./signer-pool";

export interface NodeSigning {
  factory: (secretKey: Uint8Array, kid: string) => Promise<Signer>;
  close(): Promise<void>;
}

/** At most this many signatures in a tick are signed inline; more go to the pool, all of them. */
export const DIRECT_SIGNS_PER_TICK = 4;

export function nodeSigning(provider: SigilConfig["security"]["crypto_provider"]): NodeSigning {
  if (provider === "noble") {
    return { factory: (sk, kid) => createReferenceSigner(sk, kid), close: async () => {} };
  }
  const pool = new SignerPool();
  return {
    factory: async (sk, kid) => {
      const pooled = await pool.createSigner(sk, kid);
      const der = ed25519Pkcs8(sk);
      const key = createPrivateKey({ key: Buffer.from(der.buffer), format: "der", type: "pkcs8" });
      der.fill(0);
      const direct = (message: Uint8Array) => {
        const sig = oneShotSign(null, message, key);
        return new Uint8Array(sig.buffer, sig.byteOffset, sig.length);
      };
      // Decided per tick, for all of it: a burst goes to the pool whole.
      let tick: { message: Uint8Array; done: (p: Promise<Uint8Array>) => void }[] = [];
      const flush = () => {
        const jobs = tick;
        tick = [];
        if (jobs.length > DIRECT_SIGNS_PER_TICK) {
          for (const j of jobs) j.done(pooled.sign(j.message));
          return;
        }
        for (const j of jobs) {
          try {
            j.done(Promise.resolve(direct(j.message)));
          } catch (e) {
            j.done(Promise.reject(e));
          }
        }
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
