// One KeyProvider contract (shared/keys/provider.ts), run against every provider: the software
// provider (keys encrypted at rest) and the PKCS#11 provider on a SoftHSM2 token this file creates.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11KeyProvider, readHsmConfig } from "../../platform/node/pkcs11-provider";
import { CryptoError, ed25519Kid, verifyEd25519 } from "../../shared/crypto";
import { utf8 } from "../../shared/encoding";
import { type KeyProvider, MemorySecretStore, SoftwareKeyProvider } from "../../shared/keys";
import { type TestHsm, testHsm } from "../hsm/support";

let hsm: TestHsm;
let hsmConfig: string;
const open: { close(): Promise<void> }[] = [];

beforeAll(() => {
  hsm = testHsm();
  const pin = hsm.token("sigil-contract");
  hsmConfig = hsm.config({ token_label: "sigil-contract", pin_file: pin, sessions: 2 });
});
afterAll(async () => {
  for (const p of open) await p.close();
  hsm.dispose();
});

const providers: [string, () => Promise<KeyProvider>][] = [
  [
    "software",
    async () =>
      new SoftwareKeyProvider({
        secret: "contract",
        store: new MemorySecretStore(),
        scrypt: { N: 2 ** 14, r: 8, p: 1 },
      }),
  ],
  [
    "pkcs11 (SoftHSM2)",
    async () => {
      // A fresh key_label per instance: each gets a provider of its own on the shared token.
      const cfg = { ...(await readHsmConfig(hsmConfig)), key_label: `c${open.length}` };
      const p = await Pkcs11KeyProvider.open(cfg);
      open.push(p);
      return p;
    },
  ],
];

async function code(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CryptoError);
  return (e as CryptoError).code;
}

describe.each(providers)("KeyProvider contract: %s", (_name, make) => {
  it("generates a key named by its RFC 7638 thumbprint, lists it, and signs verifiably with it", async () => {
    const p = await make();
    expect(await p.listKeys()).toEqual([]);
    const a = await p.generateSigningKey();
    const b = await p.generateSigningKey();
    expect(a.kid).toBe(ed25519Kid(a.publicKey));
    expect(a.kid).not.toBe(b.kid);
    expect(await p.listKeys()).toEqual([a.kid, b.kid].sort());
    const signer = await p.getSigner(a.kid);
    expect(signer.kid).toBe(a.kid);
    expect(signer.publicKey).toEqual(a.publicKey);
    const msg = utf8("contract");
    const sig = await signer.sign(msg);
    expect(sig.length).toBe(64);
    expect(await verifyEd25519(a.publicKey, msg, sig)).toBe(true);
    expect(await verifyEd25519(b.publicKey, msg, sig)).toBe(false);
  });

  it("destroys a key idempotently; an unknown or destroyed kid is invalid_key", async () => {
    const p = await make();
    const a = await p.generateSigningKey();
    await p.destroyKey(a.kid);
    await p.destroyKey(a.kid);
    expect(await p.listKeys()).toEqual([]);
    expect(await code(p.getSigner(a.kid))).toBe("invalid_key");
    expect(await code(p.getSigner(ed25519Kid(new Uint8Array(32).fill(7))))).toBe("invalid_key");
  });

  it("signs concurrently: 64 signatures in flight all verify", async () => {
    const p = await make();
    const a = await p.generateSigningKey();
    const signer = await p.getSigner(a.kid);
    const msgs = Array.from({ length: 64 }, (_, i) => utf8(`m${i}`));
    const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
    for (const [i, m] of msgs.entries()) {
      expect(await verifyEd25519(a.publicKey, m, sigs[i]!)).toBe(true);
    }
  });
});
