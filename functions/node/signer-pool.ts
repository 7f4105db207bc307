// Node-only Ed25519 signer on a small worker_threads pool, behind the shared `Signer` interface.
// Why: WebCrypto signs on libuv's threadpool, but every call pays a fixed JavaScript cost on the
// main thread (argument checks, job objects, one promise per op) that caps throughput well below
// what two cores of OpenSSL can do. Here signs issued in the same tick are coalesced into one
// message per worker; workers sign with node:crypto (OpenSSL) and answer with one buffer.
// Results are byte-identical to createSigner (Ed25519 is deterministic), which the tests check.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  CryptoError,
  ed25519Kid,
  ed25519Pkcs8,
  ed25519PublicKeyFromSeed,
  ed25519StrictPrecheck,
  type Signer,
} from "../../shared/crypto";

// Plain CommonJS so the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createPrivateKey, createPublicKey, sign, verify } = require("node:crypto");
const keys = new Map();
const pubs = new Map();
const SPKI = Buffer.from("302a300506032b6570032100", "hex");
parentPort.on("message", (m) => {
  if (m.t === "key") {
    keys.set(m.key, createPrivateKey({ key: Buffer.from(m.der), format: "der", type: "pkcs8" }));
    m.der.fill(0);
    return;
  }
  if (m.t === "drop") { keys.delete(m.key); return; }
  if (m.t === "verify") {
    const n = m.msgs.length;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      try {
        const id = Buffer.from(m.pks[i]).toString("hex");
        let k = pubs.get(id);
        if (k === undefined) {
          if (pubs.size >= 10000) pubs.clear();
          k = createPublicKey({ key: Buffer.concat([SPKI, m.pks[i]]), format: "der", type: "spki" });
          pubs.set(id, k);
        }
        out[i] = verify(null, m.msgs[i], k, m.sigs[i]) ? 1 : 0;
      } catch { out[i] = 0; }
    }
    parentPort.postMessage({ id: m.id, out }, [out.buffer]);
    return;
  }
  try {
    const n = m.msgs.length;
    const out = new Uint8Array(n * 64);
    for (let i = 0; i < n; i++) {
      const k = keys.get(m.keys[i]);
      if (k === undefined) throw new Error("unknown key");
      out.set(sign(null, m.msgs[i], k), i * 64);
    }
    parentPort.postMessage({ id: m.id, out }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});`;

interface SignJob {
  key: number;
  msg: Uint8Array;
  resolve: (sig: Uint8Array) => void;
  reject: (e: unknown) => void;
}

interface VerifyJob {
  pk: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
  resolve: (ok: boolean) => void;
}

type Batch = { kind: "sign"; part: SignJob[] } | { kind: "verify"; part: VerifyJob[] };

interface Slot {
  worker: Worker;
  inflight: Map<number, Batch>;
}

export interface SignerPoolOptions {
  /** Worker count; default: available cores. */
  size?: number;
  /** Upper bound on one message to a worker (bounds latency of a huge burst). */
  maxBatch?: number;
}

const closedError = () => new CryptoError("channel_closed", "signer pool is closed");

export class SignerPool {
  readonly #slots: Slot[] = [];
  readonly #keys = new Map<number, Uint8Array>(); // key id -> pkcs8, to re-seed a replaced worker
  readonly #maxBatch: number;
  #signs: SignJob[] = [];
  #verifies: VerifyJob[] = [];
  #scheduled = false;
  #nextKey = 1;
  #nextMsg = 1;
  #rr = 0;
  #inflight = 0;
  #closed = false;

  constructor(opts: SignerPoolOptions = {}) {
    const size = opts.size ?? Math.max(1, availableParallelism());
    if (!Number.isInteger(size) || size < 1 || size > 64) {
      throw new CryptoError("invalid_input", "pool size must be 1..64");
    }
    this.#maxBatch = opts.maxBatch ?? 256;
    for (let i = 0; i < size; i++) this.#slots.push(this.#spawn());
  }

  get size(): number {
    return this.#slots.length;
  }

  /** A Signer whose key lives in the pool's workers. Same contract as createSigner. */
  async createSigner(secretKey: Uint8Array, kid?: string): Promise<Signer> {
    if (this.#closed) throw closedError();
    const publicKey = await ed25519PublicKeyFromSeed(secretKey); // checks it is 32 bytes
    const der = ed25519Pkcs8(secretKey);
    const key = this.#nextKey++;
    this.#keys.set(key, der);
    for (const s of this.#slots) s.worker.postMessage({ t: "key", key, der: der.slice() });
    const pool = this;
    return {
      kid: kid ?? ed25519Kid(publicKey),
      publicKey: publicKey.slice(),
      sign(message: Uint8Array): Promise<Uint8Array> {
        return pool.#sign(key, message);
      },
    };
  }

  /**
   * Strict Ed25519 verification with the same contract as verifyEd25519 (never throws, same
   * strict prechecks), on the workers. A closed pool answers false.
   */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (this.#closed || !ed25519StrictPrecheck(publicKey, message, signature)) {
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      this.#verifies.push({ pk: publicKey, msg: message, sig: signature, resolve });
      this.#schedule();
    });
  }

  /** Stops the workers; pending signs are rejected, pending verifies answer false. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const k of this.#keys.values()) k.fill(0);
    this.#keys.clear();
    const slots = this.#slots.splice(0);
    for (const s of slots) this.#failAll(s, closedError());
    for (const p of this.#signs.splice(0)) p.reject(closedError());
    for (const p of this.#verifies.splice(0)) p.resolve(false);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #sign(key: number, message: Uint8Array): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(closedError());
    if (!(message instanceof Uint8Array)) {
      return Promise.reject(new CryptoError("invalid_input", "message: expected bytes"));
    }
    return new Promise((resolve, reject) => {
      this.#signs.push({ key, msg: message, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#closed) return;
    const signs = this.#signs;
    const verifies = this.#verifies;
    this.#signs = [];
    this.#verifies = [];
    this.#dispatch(signs, (part, id) => ({
      batch: { kind: "sign", part },
      msg: { t: "sign", id, keys: part.map((p) => p.key), msgs: part.map((p) => p.msg) },
    }));
    this.#dispatch(verifies, (part, id) => ({
      batch: { kind: "verify", part },
      msg: {
        t: "verify",
        id,
        pks: part.map((p) => p.pk),
        msgs: part.map((p) => p.msg),
        sigs: part.map((p) => p.sig),
      },
    }));
  }

  // Spreads one burst over all workers so every core gets a share.
  #dispatch<J>(jobs: J[], build: (part: J[], id: number) => { batch: Batch; msg: unknown }): void {
    if (jobs.length === 0) return;
    const n = this.#slots.length;
    const per = Math.min(this.#maxBatch, Math.ceil(jobs.length / n));
    for (let i = 0; i < jobs.length; i += per) {
      const id = this.#nextMsg++;
      const { batch, msg } = build(jobs.slice(i, i + per), id);
      const slot = this.#slots[this.#rr++ % n]!;
      slot.inflight.set(id, batch);
      if (this.#inflight++ === 0) for (const s of this.#slots) s.worker.ref();
      slot.worker.postMessage(msg);
    }
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref(); // idle workers must not keep the process alive
    const slot: Slot = { worker, inflight: new Map() };
    for (const [key, der] of this.#keys) worker.postMessage({ t: "key", key, der: der.slice() });
    worker.on("message", (m: { id: number; out?: Uint8Array; error?: string }) => {
      const batch = slot.inflight.get(m.id);
      if (!batch) return;
      slot.inflight.delete(m.id);
      this.#settled();
      const out = m.out;
      if (batch.kind === "verify") {
        const good = out !== undefined && out.length === batch.part.length;
        batch.part.forEach((p, i) => {
          p.resolve(good && out[i] === 1);
        });
        return;
      }
      if (out === undefined || out.length !== batch.part.length * 64) {
        const e = new CryptoError(
          "invalid_input",
          `signer worker failed: ${m.error ?? "bad reply"}`,
        );
        for (const p of batch.part) p.reject(e);
        return;
      }
      batch.part.forEach((p, i) => {
        p.resolve(out.slice(i * 64, i * 64 + 64));
      });
    });
    const replace = (why: unknown) => {
      this.#failAll(slot, new CryptoError("invalid_input", "signer worker died", { cause: why }));
      const i = this.#slots.indexOf(slot);
      if (i >= 0 && !this.#closed) this.#slots[i] = this.#spawn();
    };
    worker.on("error", replace);
    worker.on("exit", (code) => {
      if (!this.#closed) replace(new Error(`exit ${code}`));
    });
    return slot;
  }

  #failAll(slot: Slot, e: unknown): void {
    for (const batch of slot.inflight.values()) {
      this.#settled();
      if (batch.kind === "verify") for (const p of batch.part) p.resolve(false);
      else for (const p of batch.part) p.reject(e);
    }
    slot.inflight.clear();
  }

  #settled(): void {
    if (--this.#inflight === 0) for (const s of this.#slots) s.worker.unref();
  }
}
