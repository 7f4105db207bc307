// Every Wycheproof vector for every primitive we ship, valid and invalid, gives the expected result.
// Each suite counts the vectors it ran and checks the count against the file's numberOfTests.
import { describe, expect, it } from "vitest";
import {
  hkdfSha256,
  hmacSha256,
  verifyEd25519,
  verifyEd25519Reference,
  verifyHmacSha256,
  x25519SharedSecret,
} from "../../shared/crypto";
import {
  Aes256Gcm,
  aesGcmDecryptRaw,
  aesGcmEncryptRaw,
  chacha20Poly1305DecryptRaw,
  chacha20Poly1305EncryptRaw,
  xchacha20Poly1305DecryptRaw,
  xchacha20Poly1305EncryptRaw,
} from "../../shared/crypto/aead";
import { fromHex } from "../../shared/encoding";
import { readVectorJson } from "../support/vectors";

interface Suite<G> {
  numberOfTests: number;
  testGroups: (G & { tests: Vector[] })[];
}
interface Vector {
  tcId: number;
  result: "valid" | "invalid" | "acceptable";
  flags: string[];
  [k: string]: unknown;
}
const h = (v: unknown): Uint8Array => fromHex(String(v));
const concat = (a: Uint8Array, b: Uint8Array) => {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
};
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function load<G>(file: string): Suite<G> {
  const s = readVectorJson<Suite<G>>("wycheproof", file);
  expect(s.numberOfTests).toBeGreaterThan(0);
  return s;
}

describe("Wycheproof ed25519", () => {
  const suite = load<{ publicKey: { pk: string } }>("ed25519_test.json");
  for (const [name, verify] of [
    ["native (WebCrypto)", verifyEd25519],
    ["reference (@noble)", verifyEd25519Reference],
  ] as const) {
    it(`${name}: every vector gives the expected result`, async () => {
      let count = 0;
      const wrong: number[] = [];
      for (const g of suite.testGroups) {
        const pk = h(g.publicKey.pk);
        for (const t of g.tests) {
          count++;
          const ok = await verify(pk, h(t.msg), h(t.sig));
          if (ok !== (t.result === "valid")) wrong.push(t.tcId);
        }
      }
      expect(wrong).toEqual([]);
      expect(count).toBe(suite.numberOfTests);
    });
  }
});

describe("Wycheproof x25519", () => {
  const suite = load<{ curve: string }>("x25519_test.json");
  it("valid vectors compute the shared secret; acceptable ones compute it or are rejected", () => {
    let count = 0;
    let rejected = 0;
    const wrong: number[] = [];
    for (const g of suite.testGroups) {
      expect(g.curve).toBe("curve25519");
      for (const t of g.tests) {
        count++;
        let got: string | null = null;
        try {
          got = hex(x25519SharedSecret(h(t.private), h(t.public)));
        } catch {
          rejected++;
        }
        if (got === null ? t.result === "valid" : got !== t.shared) wrong.push(t.tcId);
        // Low-order keys (all-zero shared secret) must be refused, never "computed".
        if (t.shared === "0".repeat(64) && got !== null) wrong.push(t.tcId);
      }
    }
    expect(wrong).toEqual([]);
    expect(rejected).toBeGreaterThan(0);
    expect(count).toBe(suite.numberOfTests);
  });
});

type AeadGroup = { keySize: number; ivSize: number; tagSize: number };

describe("Wycheproof AES-GCM", () => {
  const suite = load<AeadGroup>("aes_gcm_test.json");
  it("raw primitive: 96-bit IV vectors match; every other IV length is refused", async () => {
    let count = 0;
    let refused = 0;
    const wrong: number[] = [];
    for (const g of suite.testGroups) {
      for (const t of g.tests) {
        count++;
        const key = h(t.key);
        const iv = h(t.iv);
        const ctTag = concat(h(t.ct), h(t.tag));
        let pt: string | null = null;
        try {
          pt = hex(await aesGcmDecryptRaw(key, iv, ctTag, h(t.aad)));
        } catch {}
        if (g.ivSize !== 96) {
          // Outside the profile (Wycheproof SmallIv/LongIv/ZeroLengthIv): refused both ways.
          const ct = await aesGcmEncryptRaw(key, iv, h(t.msg), h(t.aad)).catch(() => null);
          if (pt !== null || ct !== null) wrong.push(t.tcId);
          refused++;
        } else if (t.result === "valid") {
          if (pt !== t.msg) wrong.push(t.tcId);
          const ct = await aesGcmEncryptRaw(key, iv, h(t.msg), h(t.aad)).catch(() => null);
          if (ct === null || hex(ct) !== hex(ctTag)) wrong.push(t.tcId);
        } else if (pt !== null) wrong.push(t.tcId);
      }
    }
    expect(wrong).toEqual([]);
    expect(refused).toBeLessThan(count / 2);
    expect(count).toBe(suite.numberOfTests);
  });

  it("product API (AES-256, 96-bit nonce): opens valid vectors, rejects invalid ones and other sizes", async () => {
    let count = 0;
    let inProfile = 0;
    const wrong: number[] = [];
    for (const g of suite.testGroups) {
      for (const t of g.tests) {
        count++;
        const key = h(t.key);
        if (g.keySize !== 256) {
          await expect(Aes256Gcm.create(key)).rejects.toThrow();
          continue;
        }
        const aead = await Aes256Gcm.create(key);
        const sealed = concat(concat(h(t.iv), h(t.ct)), h(t.tag));
        let pt: string | null = null;
        try {
          pt = hex(await aead.decrypt(sealed, h(t.aad)));
        } catch {}
        // The product API only speaks 96-bit nonces: any other IV length cannot be expressed, so
        // its vectors are read as a 12-byte nonce and must fail authentication.
        const expectOpen = g.ivSize === 96 && t.result === "valid";
        if (g.ivSize === 96) inProfile++;
        if (expectOpen ? pt !== t.msg : pt !== null) wrong.push(t.tcId);
      }
    }
    expect(wrong).toEqual([]);
    expect(inProfile).toBeGreaterThan(0);
    expect(count).toBe(suite.numberOfTests);
  });
});

for (const [file, enc, dec] of [
  ["chacha20_poly1305_test.json", chacha20Poly1305EncryptRaw, chacha20Poly1305DecryptRaw],
  ["xchacha20_poly1305_test.json", xchacha20Poly1305EncryptRaw, xchacha20Poly1305DecryptRaw],
] as const) {
  describe(`Wycheproof ${file}`, () => {
    const suite = load<AeadGroup>(file);
    it("every vector gives the expected result", () => {
      let count = 0;
      const wrong: number[] = [];
      for (const g of suite.testGroups) {
        for (const t of g.tests) {
          count++;
          const [key, iv, aad] = [h(t.key), h(t.iv), h(t.aad)];
          const ctTag = concat(h(t.ct), h(t.tag));
          let pt: string | null = null;
          try {
            pt = hex(dec(key, iv, ctTag, aad));
          } catch {}
          if (t.result === "valid") {
            if (pt !== t.msg) wrong.push(t.tcId);
            if (hex(enc(key, iv, h(t.msg), aad)) !== hex(ctTag)) wrong.push(t.tcId);
          } else {
            if (pt !== null) wrong.push(t.tcId);
            // Invalid nonce sizes must be refused for encryption too.
            if (t.flags.includes("InvalidNonceSize")) {
              expect(() => enc(key, iv, h(t.msg), aad)).toThrow();
            }
          }
        }
      }
      expect(wrong).toEqual([]);
      expect(count).toBe(suite.numberOfTests);
    });
  });
}

describe("Wycheproof HKDF-SHA256", () => {
  const suite = load<{ keySize: number }>("hkdf_sha256_test.json");
  it("every vector gives the expected result", () => {
    let count = 0;
    const wrong: number[] = [];
    for (const g of suite.testGroups) {
      for (const t of g.tests) {
        count++;
        let okm: string | null = null;
        try {
          okm = hex(hkdfSha256(h(t.ikm), h(t.salt), h(t.info), Number(t.size)));
        } catch {}
        if (t.result === "valid" ? okm !== t.okm : okm !== null) wrong.push(t.tcId);
      }
    }
    expect(wrong).toEqual([]);
    expect(count).toBe(suite.numberOfTests);
  });
});

describe("Wycheproof HMAC-SHA256", () => {
  const suite = load<{ keySize: number; tagSize: number }>("hmac_sha256_test.json");
  it("every vector gives the expected result (full and truncated tags)", () => {
    let count = 0;
    const wrong: number[] = [];
    for (const g of suite.testGroups) {
      const tagBytes = g.tagSize / 8;
      for (const t of g.tests) {
        count++;
        const [key, msg, tag] = [h(t.key), h(t.msg), h(t.tag)];
        const ok = verifyHmacSha256(key, msg, tag, tagBytes);
        if (ok !== (t.result === "valid")) wrong.push(t.tcId);
        if (t.result === "valid" && hex(hmacSha256(key, msg).subarray(0, tagBytes)) !== t.tag) {
          wrong.push(t.tcId);
        }
        // A truncated tag is never accepted where the full tag is expected.
        if (tagBytes < 32 && verifyHmacSha256(key, msg, tag)) wrong.push(t.tcId);
      }
    }
    expect(wrong).toEqual([]);
    expect(count).toBe(suite.numberOfTests);
  });
});
