// The PKCS#11 KeyProvider (platform/node/pkcs11-provider.ts) against a real SoftHSM2 token the
// test creates: keys never leave the token, signatures verify with the software verifier, keys
// are found again by id after a restart, rotation keeps what the old key signed verifiable, and
// the session pool signs in parallel.
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CKK_EC_EDWARDS,
  Pkcs11KeyProvider,
  readHsmConfig,
} from "../../platform/node/pkcs11-provider";
import { ed25519Kid, verifyEd25519 } from "../../shared/crypto";
import { fromBase64Url, utf8 } from "../../shared/encoding";
import { KeyManager, MemoryKeyRegistry, validAt } from "../../shared/keys";
import { SOFTHSM_MODULE, type TestHsm, testHsm } from "./support";

let hsm: TestHsm;
let cfgPath: string;
const open = async (sessions?: number) =>
  Pkcs11KeyProvider.open(await readHsmConfig(cfgPath), {
    source: cfgPath,
    ...(sessions ? { sessions } : {}),
  });

beforeAll(() => {
  hsm = testHsm();
  const pin = hsm.token("sigil-test");
  cfgPath = hsm.config({ token_label: "sigil-test", pin_file: pin, sessions: 4 });
});
afterAll(() => hsm.dispose());

/** The test's own view of the token, through the module directly (never finalised here). */
function rawSession(): { p11: pkcs11js.PKCS11; session: pkcs11js.Handle; done(): void } {
  const p11 = new pkcs11js.PKCS11();
  p11.load(SOFTHSM_MODULE);
  try {
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (
      !(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED)
    )
      throw e;
  }
  const slot = p11
    .C_GetSlotList(true)
    .find((s) => p11.C_GetTokenInfo(s).label.trim() === "sigil-test");
  if (!slot) throw new Error("test token not found");
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  return { p11, session, done: () => p11.C_CloseSession(session) };
}

function findPrivate(p11: pkcs11js.PKCS11, session: pkcs11js.Handle, kid: string) {
  p11.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    { type: pkcs11js.CKA_ID, value: Buffer.from(fromBase64Url(kid)) },
  ]);
  const found = p11.C_FindObjects(session, 4);
  p11.C_FindObjectsFinal(session);
  return found;
}

describe("Pkcs11KeyProvider (SoftHSM2)", () => {
  it("generates Ed25519 keys in the token whose private value cannot be read", async () => {
    const provider = await open();
    try {
      const { kid, publicKey } = await provider.generateSigningKey();
      expect(kid).toBe(ed25519Kid(publicKey));
      expect(provider.name).toBe("pkcs11:sigil-test");
      const raw = rawSession();
      try {
        // Logged in by the provider (one login per application covers every session).
        const [priv] = findPrivate(raw.p11, raw.session, kid);
        expect(priv).toBeDefined();
        const attrs = raw.p11.C_GetAttributeValue(raw.session, priv as pkcs11js.Handle, [
          { type: pkcs11js.CKA_SENSITIVE },
          { type: pkcs11js.CKA_EXTRACTABLE },
          { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
          { type: pkcs11js.CKA_LOCAL },
        ]);
        expect(attrs.map((a) => (a.value as Buffer)[0])).toEqual([1, 0, 1, 1]);
        expect(() =>
          raw.p11.C_GetAttributeValue(raw.session, priv as pkcs11js.Handle, [
            { type: pkcs11js.CKA_VALUE },
          ]),
        ).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
      } finally {
        raw.done();
      }
    } finally {
      await provider.close();
    }
  });

  it("signs with the token; the software verifier accepts it; a restart finds the key by id", async () => {
    const first = await open();
    const { kid, publicKey } = await first.generateSigningKey();
    const msg = utf8("audit event bytes");
    const sig = await (await first.getSigner(kid)).sign(msg);
    expect(await verifyEd25519(publicKey, msg, sig)).toBe(true);
    expect(await verifyEd25519(publicKey, utf8("other"), sig)).toBe(false);
    await first.close();
    await expect(first.getSigner(kid)).rejects.toThrow(/closed/);

    const again = await open();
    try {
      expect(await again.listKeys()).toContain(kid);
      const signer = await again.getSigner(kid);
      expect(signer.publicKey).toEqual(publicKey);
      // Ed25519 is deterministic: the same key gives the same signature.
      expect(await signer.sign(msg)).toEqual(sig);
      await expect(again.getSigner(ed25519Kid(new Uint8Array(32)))).rejects.toThrow(
        /holds no private key/,
      );
      await expect(again.getSigner("not-a-kid")).rejects.toThrow(/holds no private key/);
    } finally {
      await again.close();
    }
  });

  it("rotation: the new key signs, the old private key is gone, old signatures still verify", async () => {
    const provider = await open();
    try {
      const registry = new MemoryKeyRegistry();
      const manager = new KeyManager({ registry, provider });
      const created = await manager.createKey({ role: "service", subject: "sigil" });
      const oldKid = created.record.kid;
      const msg = utf8("checkpoint");
      const signedAt = Date.now();
      const oldSig = await (await manager.signer(oldKid)).sign(msg);
      await new Promise((r) => setTimeout(r, 5));

      const rotated = await manager.rotate(oldKid);
      const newKid = rotated.record.kid;
      expect(newKid).not.toBe(oldKid);
      expect(await provider.listKeys()).toContain(newKid);
      expect(await provider.listKeys()).not.toContain(oldKid);
      await expect(provider.getSigner(oldKid)).rejects.toThrow(/holds no private key/);

      const oldRecord = await registry.get(oldKid);
      expect(oldRecord?.status).toBe("rotated");
      expect(validAt(oldRecord!, signedAt)).toBe(true);
      expect(await verifyEd25519(oldRecord!.publicKey, msg, oldSig)).toBe(true);
      const newSig = await (await manager.signer(newKid)).sign(msg);
      expect(await verifyEd25519(rotated.record.publicKey, msg, newSig)).toBe(true);
    } finally {
      await provider.close();
    }
  });

  it("signs in parallel through the session pool: 256 concurrent signatures all verify", async () => {
    const provider = await open(4);
    try {
      const { kid, publicKey } = await provider.generateSigningKey();
      const signer = await provider.getSigner(kid);
      const msgs = Array.from({ length: 256 }, (_, i) => utf8(`event ${i}`));
      const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
      const ok = await Promise.all(msgs.map((m, i) => verifyEd25519(publicKey, m, sigs[i]!)));
      expect(ok.every(Boolean)).toBe(true);
    } finally {
      await provider.close();
    }
  });

  it("generates keys concurrently (each on its own session) and closes only after the signs in flight", async () => {
    const provider = await open(2);
    const made = await Promise.all(Array.from({ length: 6 }, () => provider.generateSigningKey()));
    expect(new Set(made.map((k) => k.kid)).size).toBe(6);
    const listed = await provider.listKeys();
    for (const k of made) expect(listed).toContain(k.kid);

    const signer = await provider.getSigner(made[0]!.kid);
    const inFlight = Array.from({ length: 32 }, (_, i) => signer.sign(utf8(`late ${i}`)));
    const closing = provider.close();
    const settled = await Promise.allSettled(inFlight);
    await closing;
    // Those already holding or waiting for a session either finish or are told the provider closed.
    for (const [i, r] of settled.entries()) {
      if (r.status === "rejected") expect(String(r.reason)).toMatch(/closed/);
      else expect(await verifyEd25519(made[0]!.publicKey, utf8(`late ${i}`), r.value)).toBe(true);
    }
    expect(settled.some((r) => r.status === "fulfilled")).toBe(true);
    await expect(signer.sign(utf8("after"))).rejects.toThrow(/closed/);
  });

  it("two providers on one module share it: closing one leaves the other signing", async () => {
    const a = await open(1);
    const b = await open(1);
    const { kid, publicKey } = await b.generateSigningKey();
    await a.close();
    try {
      const sig = await (await b.getSigner(kid)).sign(utf8("x"));
      expect(await verifyEd25519(publicKey, utf8("x"), sig)).toBe(true);
    } finally {
      await b.close();
    }
  });
});
