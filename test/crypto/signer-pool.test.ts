import { afterAll, describe, expect, it } from "vitest";
import { SignerPool } from "../../functions/node/signer-pool";
import {
  CryptoError,
  createSigner,
  generateEd25519KeyPair,
  verifyEd25519,
} from "../../shared/crypto";
import { fromHex, toHex, utf8 } from "../../shared/encoding";
import { readVectorJson } from "../support/vectors";

const pool = new SignerPool({ size: 2, maxBatch: 16 });
afterAll(() => pool.close());

describe("SignerPool (Node worker_threads signer)", () => {
  it("produces exactly the WebCrypto signer's signatures, for many keys and messages in flight", async () => {
    const pairs = await Promise.all(Array.from({ length: 3 }, () => generateEd25519KeyPair()));
    const pooled = await Promise.all(pairs.map((p) => pool.createSigner(p.secretKey)));
    const native = await Promise.all(pairs.map((p) => createSigner(p.secretKey)));
    expect(pooled.map((s) => s.kid)).toEqual(native.map((s) => s.kid));
    const msgs = Array.from({ length: 200 }, (_, i) =>
      crypto.getRandomValues(new Uint8Array(i % 97)),
    );
    const sigs = await Promise.all(msgs.map((m, i) => pooled[i % 3]!.sign(m)));
    const want = await Promise.all(msgs.map((m, i) => native[i % 3]!.sign(m)));
    expect(sigs.map(toHex)).toEqual(want.map(toHex));
    const ok = await Promise.all(
      msgs.map((m, i) => verifyEd25519(pairs[i % 3]!.publicKey, m, sigs[i]!)),
    );
    expect(ok.every(Boolean)).toBe(true);
  });

  it("verify: every Wycheproof ed25519 vector gives the expected result", async () => {
    const suite = readVectorJson<{
      numberOfTests: number;
      testGroups: {
        publicKey: { pk: string };
        tests: { tcId: number; msg: string; sig: string; result: string }[];
      }[];
    }>("wycheproof", "ed25519_test.json");
    const jobs = suite.testGroups.flatMap((g) => g.tests.map((t) => ({ pk: g.publicKey.pk, t })));
    expect(jobs.length).toBe(suite.numberOfTests);
    const got = await Promise.all(
      jobs.map(({ pk, t }) => pool.verify(fromHex(pk), fromHex(t.msg), fromHex(t.sig))),
    );
    const wrong = jobs.filter((j, i) => got[i] !== (j.t.result === "valid")).map((j) => j.t.tcId);
    expect(wrong).toEqual([]);
  });

  it("verify agrees with verifyEd25519 on honest and tampered signatures, never throws", async () => {
    const { secretKey, publicKey } = await generateEd25519KeyPair();
    const s = await createSigner(secretKey);
    const msgs = Array.from({ length: 100 }, (_, i) => utf8(`message ${i}`));
    const sigs = await Promise.all(msgs.map((m) => s.sign(m)));
    const bad = sigs.map((g, i) => {
      const c = g.slice();
      c[i % 64]! ^= 1 << (i % 8);
      return c;
    });
    const a = await Promise.all(msgs.map((m, i) => pool.verify(publicKey, m, sigs[i]!)));
    const b = await Promise.all(msgs.map((m, i) => pool.verify(publicKey, m, bad[i]!)));
    expect(a.every(Boolean)).toBe(true);
    expect(b.some(Boolean)).toBe(false);
    const ref = await Promise.all(msgs.map((m, i) => verifyEd25519(publicKey, m, bad[i]!)));
    expect(b).toEqual(ref);
    expect(await pool.verify("x" as unknown as Uint8Array, msgs[0]!, sigs[0]!)).toBe(false);
  });

  it("rejects bad keys and messages with typed errors", async () => {
    await expect(pool.createSigner(new Uint8Array(31))).rejects.toBeInstanceOf(CryptoError);
    const s = await pool.createSigner((await generateEd25519KeyPair()).secretKey, "k");
    expect(s.kid).toBe("k");
    await expect(s.sign("x" as unknown as Uint8Array)).rejects.toBeInstanceOf(CryptoError);
  });

  it("after close, signing fails closed and verification answers false", async () => {
    const p = new SignerPool({ size: 1 });
    const s = await p.createSigner((await generateEd25519KeyPair()).secretKey);
    const sig = await s.sign(utf8("a"));
    expect(await p.verify(s.publicKey, utf8("a"), sig)).toBe(true);
    await p.close();
    await expect(s.sign(utf8("b"))).rejects.toBeInstanceOf(CryptoError);
    expect(await p.verify(s.publicKey, utf8("a"), sig)).toBe(false);
  });
});
