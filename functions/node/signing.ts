// How service-held keys sign on Node, by `[security] crypto_provider`:
// - "webcrypto" / "ring" (native): a worker_threads pool on node:crypto. Signatures issued in one
//   tick travel as one message per worker, so the main thread pays about 2 µs per signature
//   instead of WebCrypto's ~15 µs job dispatch; the audit sequencer (one signature per event) and
//   every request's audit append are main-thread bound. Byte-identical to WebCrypto (Ed25519 is
//   deterministic; test/crypto/signer-pool.test.ts checks it).
// - "noble": the pure-JS reference signer (portable, slow).
import type { SigilConfig } from "../../shared/config";
import { createReferenceSigner, type Signer } from "../../shared/crypto";
import { SignerPool } from "./signer-pool";

export interface NodeSigning {
  factory: (secretKey: Uint8Array, kid: string) => Promise<Signer>;
  close(): Promise<void>;
}

export function nodeSigning(provider: SigilConfig["security"]["crypto_provider"]): NodeSigning {
  if (provider === "noble") {
    return { factory: (sk, kid) => createReferenceSigner(sk, kid), close: async () => {} };
  }
  const pool = new SignerPool();
  return { factory: (sk, kid) => pool.createSigner(sk, kid), close: () => pool.close() };
}
