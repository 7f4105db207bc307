// Ed25519 throughput: the product's signer and verifier used the way the API uses them (a batch of
// operations in flight, Promise.all over 64 or 256), side by side in one run with raw node:crypto
// (OpenSSL, one thread: the hardware reference) and @noble/ed25519 (pure JS).
// Goal: product >= 0.85 x 2 cores x single-thread OpenSSL. Run: npx tsx test/bench/crypto.ts
import {
  createPrivateKey,
  createPublicKey,
  sign as nodeSign,
  verify as nodeVerify,
} from "node:crypto";
import { availableParallelism } from "node:os";
import { pathToFileURL } from "node:url";
import * as ed from "@noble/ed25519";
import { SignerPool } from "../../functions/node/signer-pool";
import { createSigner, verifyEd25519 } from "../../shared/crypto";

const MS = 1000; // per measurement
const ROUNDS = 3; // interleaved; best of rounds (noise on a shared machine only ever slows us down)
const GOAL = 0.85;

type Run = () => Promise<number>; // returns ops done in ~MS

async function timed(batch: number, op: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < MS) {
    await Promise.all(Array.from({ length: batch }, op));
    n += batch;
  }
  return (n * 1000) / (performance.now() - t0);
}

function timedSync(op: () => unknown): number {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < MS) {
    for (let i = 0; i < 64; i++) op();
    n += 64;
  }
  return (n * 1000) / (performance.now() - t0);
}

export async function bench(): Promise<void> {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const msg = crypto.getRandomValues(new Uint8Array(256)); // about an RFC 9421 signature base
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
  const nodeKey = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const nodePub = createPublicKey(nodeKey);

  const signer = await createSigner(seed);
  const pool = new SignerPool();
  const pooled = await pool.createSigner(seed);
  const sig = await signer.sign(msg);
  const nobleSig = await ed.signAsync(msg, seed);
  if (Buffer.compare(Buffer.from(sig), Buffer.from(nobleSig)) !== 0)
    throw new Error("signers disagree");

  const signRuns: [string, Run | (() => number)][] = [
    ["node:crypto sign, 1 thread (reference)", () => timedSync(() => nodeSign(null, msg, nodeKey))],
    ["product createSigner (WebCrypto), batch 64", () => timed(64, () => signer.sign(msg))],
    ["product createSigner (WebCrypto), batch 256", () => timed(256, () => signer.sign(msg))],
    [`SignerPool (${pool.size} workers), batch 64`, () => timed(64, () => pooled.sign(msg))],
    [`SignerPool (${pool.size} workers), batch 256`, () => timed(256, () => pooled.sign(msg))],
    ["@noble/ed25519 signAsync, batch 64", () => timed(64, () => ed.signAsync(msg, seed))],
  ];
  const verifyRuns: [string, Run | (() => number)][] = [
    [
      "node:crypto verify, 1 thread (reference)",
      () => timedSync(() => nodeVerify(null, msg, nodePub, sig)),
    ],
    [
      "product verifyEd25519 (WebCrypto), batch 64",
      () => timed(64, () => verifyEd25519(signer.publicKey, msg, sig)),
    ],
    [
      "product verifyEd25519 (WebCrypto), batch 256",
      () => timed(256, () => verifyEd25519(signer.publicKey, msg, sig)),
    ],
    [
      `SignerPool.verify (${pool.size} workers), batch 64`,
      () => timed(64, () => pool.verify(signer.publicKey, msg, sig)),
    ],
    [
      `SignerPool.verify (${pool.size} workers), batch 256`,
      () => timed(256, () => pool.verify(signer.publicKey, msg, sig)),
    ],
    [
      "@noble/ed25519 verifyAsync, batch 64",
      () => timed(64, () => ed.verifyAsync(sig, msg, signer.publicKey, { zip215: false })),
    ],
  ];

  const cores = availableParallelism();
  console.log(
    `Ed25519 throughput, ${cores} cores, ${MS} ms per measurement, best of ${ROUNDS} interleaved rounds`,
  );
  for (const [title, runs] of [
    ["sign", signRuns],
    ["verify", verifyRuns],
  ] as const) {
    const best = new Map<string, number>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, run] of runs) best.set(name, Math.max(best.get(name) ?? 0, await run()));
    }
    const ref = best.get(runs[0]![0])!;
    const goal = GOAL * cores * ref;
    console.log(`\n${title}: goal ${GOAL} x ${cores} x reference = ${Math.round(goal)} ops/s`);
    console.log(
      `${"".padEnd(48)} ${"ops/s".padStart(9)} ${"x ref".padStart(7)} ${"x goal".padStart(7)}`,
    );
    for (const [name] of runs) {
      const v = best.get(name)!;
      console.log(
        `${name.padEnd(48)} ${String(Math.round(v)).padStart(9)} ${(v / ref).toFixed(2).padStart(7)} ${(v / goal).toFixed(2).padStart(7)}`,
      );
    }
  }
  await pool.close();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await bench();
}
