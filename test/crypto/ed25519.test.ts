import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assertEd25519,
  CryptoError,
  createReferenceSigner,
  createSigner,
  ed25519Kid,
  ed25519PublicKeyFromSeed,
  generateEd25519KeyPair,
  isValidEd25519PublicKey,
  nativeEd25519Available,
  verifyEd25519,
  verifyEd25519Reference,
} from "../../shared/crypto";
import { fromHex, toHex, utf8 } from "../../shared/encoding";

// RFC 8032 §7.1 (Ed25519): seed, public key, message, signature.
const RFC8032 = [
  {
    name: "TEST 1",
    sk: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    pk: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    msg: "",
    sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
  },
  {
    name: "TEST 2",
    sk: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    pk: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
    msg: "72",
    sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
  },
  {
    name: "TEST 3",
    sk: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
    pk: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
    msg: "af82",
    sig: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
  },
];

// L, the group order, little-endian; adding it to S gives the classic malleated signature.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
function addL(sig: Uint8Array): Uint8Array {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
  s += L;
  const out = sig.slice();
  for (let i = 32; i < 64; i++) {
    out[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return out;
}

describe("RFC 8032 §7.1", () => {
  for (const v of RFC8032) {
    it(`${v.name}: both signers produce the published signature; both verifiers accept it`, async () => {
      const sk = fromHex(v.sk);
      expect(toHex(await ed25519PublicKeyFromSeed(sk))).toBe(v.pk);
      for (const make of [createSigner, createReferenceSigner]) {
        const signer = await make(sk);
        expect(toHex(signer.publicKey)).toBe(v.pk);
        expect(signer.kid).toBe(ed25519Kid(fromHex(v.pk)));
        expect(toHex(await signer.sign(fromHex(v.msg)))).toBe(v.sig);
      }
      expect(await verifyEd25519(fromHex(v.pk), fromHex(v.msg), fromHex(v.sig))).toBe(true);
      expect(await verifyEd25519Reference(fromHex(v.pk), fromHex(v.msg), fromHex(v.sig))).toBe(
        true,
      );
    });
  }
});

describe("native and reference paths agree", () => {
  it("on random keys, messages and (tampered) signatures", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(64 * 8 + 31),
        fc.constantFrom("honest", "flip-sig", "flip-msg", "random-sig", "add-L"),
        async (seed, msg, bit, mode) => {
          const native = await createSigner(seed);
          const ref = await createReferenceSigner(seed);
          const sig = await native.sign(msg);
          expect(toHex(sig)).toBe(toHex(await ref.sign(msg)));
          let m = msg;
          let s = sig;
          if (mode === "flip-sig") {
            s = sig.slice();
            s[(bit >> 3) % 64]! ^= 1 << (bit & 7);
          } else if (mode === "flip-msg") {
            m = msg.length === 0 ? Uint8Array.of(0) : msg.slice();
            if (msg.length > 0) m[bit % msg.length]! ^= 1 << (bit & 7);
          } else if (mode === "random-sig") {
            s = crypto.getRandomValues(new Uint8Array(64));
          } else if (mode === "add-L") {
            s = addL(sig);
          }
          const a = await verifyEd25519(native.publicKey, m, s);
          const b = await verifyEd25519Reference(native.publicKey, m, s);
          expect(a).toBe(b);
          expect(a).toBe(mode === "honest");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("on random 32-byte strings as public keys", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), async (pk) => {
        const sig = crypto.getRandomValues(new Uint8Array(64));
        sig[63] = 0; // keep S below L so the point checks are what decides
        const m = utf8("x");
        expect(await verifyEd25519(pk, m, sig)).toBe(await verifyEd25519Reference(pk, m, sig));
      }),
      { numRuns: 200 },
    );
  });
});

describe("strict verification", () => {
  it("rejects S + L (malleability), wrong lengths and non-bytes without throwing", async () => {
    const { secretKey, publicKey } = await generateEd25519KeyPair();
    const signer = await createSigner(secretKey);
    const msg = utf8("hello");
    const sig = await signer.sign(msg);
    expect(await verifyEd25519(publicKey, msg, sig)).toBe(true);
    expect(await verifyEd25519(publicKey, msg, addL(sig))).toBe(false);
    expect(await verifyEd25519(publicKey, msg, sig.subarray(0, 63))).toBe(false);
    const long = new Uint8Array(65);
    long.set(sig);
    expect(await verifyEd25519(publicKey, msg, long)).toBe(false);
    expect(await verifyEd25519(publicKey.subarray(0, 31), msg, sig)).toBe(false);
    const junk = "x" as unknown as Uint8Array;
    expect(await verifyEd25519(junk, msg, sig)).toBe(false);
    expect(await verifyEd25519(publicKey, junk, sig)).toBe(false);
    expect(await verifyEd25519(publicKey, msg, junk)).toBe(false);
    await expect(assertEd25519(publicKey, utf8("other"), sig)).rejects.toBeInstanceOf(CryptoError);
    await expect(assertEd25519(publicKey, msg, sig)).resolves.toBeUndefined();
  });

  it("rejects small-order and non-canonical public keys", async () => {
    const identity = new Uint8Array(32);
    identity[0] = 1; // (0, 1), order 1
    const nonCanonical = fromHex(
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ); // y = p
    for (const pk of [identity, nonCanonical]) {
      expect(isValidEd25519PublicKey(pk)).toBe(false);
      // With A = identity, S = 0 and R = identity satisfy the cofactorless equation for any message.
      const sig = new Uint8Array(64);
      sig.set(identity);
      expect(await verifyEd25519(pk, utf8("anything"), sig)).toBe(false);
      expect(await verifyEd25519Reference(pk, utf8("anything"), sig)).toBe(false);
    }
  });

  it("verifies concurrently with one key (cached import) and with many keys", async () => {
    const pairs = await Promise.all(Array.from({ length: 8 }, () => generateEd25519KeyPair()));
    const signers = await Promise.all(pairs.map((p) => createSigner(p.secretKey)));
    const msgs = Array.from({ length: 64 }, (_, i) => utf8(`m${i}`));
    const sigs = await Promise.all(msgs.map((m, i) => signers[i % 8]!.sign(m)));
    const ok = await Promise.all(
      msgs.map((m, i) => verifyEd25519(pairs[i % 8]!.publicKey, m, sigs[i]!)),
    );
    expect(ok.every(Boolean)).toBe(true);
    const crossed = await Promise.all(
      msgs.map((m, i) => verifyEd25519(pairs[(i + 1) % 8]!.publicKey, m, sigs[i]!)),
    );
    expect(crossed.some(Boolean)).toBe(false);
  });
});

describe("signers", () => {
  it("run on WebCrypto in Node (the fast path is really taken)", async () => {
    expect(await nativeEd25519Available()).toBe(true);
  });

  it("reject bad secret keys with a typed error", async () => {
    await expect(createSigner(new Uint8Array(31))).rejects.toBeInstanceOf(CryptoError);
    await expect(createReferenceSigner(new Uint8Array(64))).rejects.toBeInstanceOf(CryptoError);
  });

  it("use the given kid, else the RFC 7638 thumbprint", async () => {
    const { secretKey, publicKey } = await generateEd25519KeyPair();
    expect((await createSigner(secretKey, "custom")).kid).toBe("custom");
    expect((await createSigner(secretKey)).kid).toBe(ed25519Kid(publicKey));
  });

  it("do not share state with the caller's secret key buffer", async () => {
    const { secretKey } = await generateEd25519KeyPair();
    const ref = await createReferenceSigner(secretKey);
    const native = await createSigner(secretKey);
    const before = await ref.sign(utf8("m"));
    secretKey.fill(0);
    expect(toHex(await ref.sign(utf8("m")))).toBe(toHex(before));
    expect(toHex(await native.sign(utf8("m")))).toBe(toHex(before));
  });
});
