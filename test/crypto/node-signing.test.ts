// The Node API's signer choice (functions/node/signing.ts): node:crypto inline for a few signatures per
// tick and the worker-thread pool for bursts under the native providers, the pure-JS reference
// for "noble". Ed25519 is deterministic, so both must produce the
// very bytes WebCrypto does.
import { describe, expect, it } from "vitest";
import { DIRECT_SIGNS_PER_TICK, nodeSigning } from "../../functions/node/signing";
import { CryptoError, createSigner, verifyEd25519 } from "../../shared/crypto";
import { toHex, utf8 } from "../../shared/encoding";

describe("nodeSigning", () => {
  for (const provider of ["webcrypto", "ring", "noble"] as const) {
    it(`${provider}: same signatures and public key as WebCrypto`, async () => {
      const seed = crypto.getRandomValues(new Uint8Array(32));
      const signing = nodeSigning(provider);
      try {
        const ours = await signing.factory(seed, "k1");
        const reference = await createSigner(seed, "k1");
        expect(ours.kid).toBe("k1");
        expect(toHex(ours.publicKey)).toBe(toHex(reference.publicKey));
        for (const m of ["", "audit event", "x".repeat(5000)]) {
          const sig = await ours.sign(utf8(m));
          expect(toHex(sig)).toBe(toHex(await reference.sign(utf8(m))));
          expect(await verifyEd25519(ours.publicKey, utf8(m), sig)).toBe(true);
        }
        // Bursts on either side of the per-tick threshold (inline below it, the pool above).
        for (const n of [DIRECT_SIGNS_PER_TICK, DIRECT_SIGNS_PER_TICK + 1, 50]) {
          const msgs = Array.from({ length: n }, (_, i) => utf8(`event ${i} of ${n}`));
          const sigs = await Promise.all(msgs.map((m) => ours.sign(m)));
          const refs = await Promise.all(msgs.map((m) => reference.sign(m)));
          expect(sigs.map(toHex)).toEqual(refs.map(toHex));
        }
      } finally {
        await signing.close();
      }
    });
  }

  for (const provider of ["webcrypto", "noble"] as const) {
    it(`${provider}: a seed that is not 32 bytes is refused with a CryptoError`, async () => {
      const signing = nodeSigning(provider);
      try {
        for (const n of [31, 33])
          await expect(signing.factory(new Uint8Array(n), "k")).rejects.toBeInstanceOf(CryptoError);
      } finally {
        await signing.close();
      }
    });
  }
});
