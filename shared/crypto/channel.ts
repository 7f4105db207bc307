// SecureChannel: a bidirectional AEAD session over an already agreed secret (e.g. X25519 between
// two ephemeral keys). Each direction has its own key (HKDF-SHA256) and its own 64-bit message
// counter, used as the ChaCha20-Poly1305 nonce, so nonces never repeat under a key and a message
// cannot be reflected back to its sender. The receiver rejects replays and, depending on `window`:
//   window 0 (default): strict in-order delivery; a gap or a reordering is rejected.
//   window N > 0: reordering inside the last N counters is tolerated, each counter accepted once,
//   anything older is rejected as out of window (the IPsec/DTLS anti-replay window).
// Receive state changes only after a message authenticates, so forgeries cannot disturb it.
//
// Wire format: counter (8 bytes, big-endian) | ciphertext || tag (16)
import { concatBytes, utf8 } from "../encoding";
import { chacha20Poly1305DecryptRaw, chacha20Poly1305EncryptRaw, TAG_BYTES } from "./aead";
import { assertBytes, CryptoError } from "./errors";
import { hkdfSha256 } from "./kdf";
import { x25519PublicKey, x25519SharedSecret } from "./x25519";

export type ChannelRole = "initiator" | "responder";

export interface ChannelOptions {
  role: ChannelRole;
  /** Bound into the keys: session id, both identities, the handshake transcript... */
  context?: Uint8Array;
  /** Anti-replay window size in messages; 0 = strict ordering. At most 1024. */
  window?: number;
}

const LABEL = utf8("sigil/channel/v1");
const COUNTER_BYTES = 8;
// Far below 2^64 and below 2^53 so counters stay exact JS numbers; rekey long before.
export const MAX_CHANNEL_MESSAGES = 2 ** 48;
const DIR_I2R = utf8("i->r");
const DIR_R2I = utf8("r->i");

function nonceFor(counter: number): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, BigInt(counter));
  return n;
}

export class SecureChannel {
  #sendKey: Uint8Array;
  #recvKey: Uint8Array;
  #sendDir: Uint8Array;
  #recvDir: Uint8Array;
  #sendCounter = 0;
  #highest = -1; // highest counter accepted so far
  #seen = 0n; // bit i set: counter (highest - i) was accepted
  #closed = false;
  readonly window: number;

  private constructor(secret: Uint8Array, opts: ChannelOptions) {
    const window = opts.window ?? 0;
    if (!Number.isInteger(window) || window < 0 || window > 1024) {
      throw new CryptoError("invalid_input", "channel window must be an integer in 0..1024");
    }
    if (opts.role !== "initiator" && opts.role !== "responder") {
      throw new CryptoError("invalid_input", "channel role must be initiator or responder");
    }
    this.window = window;
    const context = opts.context ?? new Uint8Array(0);
    const okm = hkdfSha256(secret, undefined, concatBytes(LABEL, context), 64);
    const i2r = okm.slice(0, 32);
    const r2i = okm.slice(32);
    okm.fill(0);
    const initiator = opts.role === "initiator";
    this.#sendKey = initiator ? i2r : r2i;
    this.#recvKey = initiator ? r2i : i2r;
    this.#sendDir = initiator ? DIR_I2R : DIR_R2I;
    this.#recvDir = initiator ? DIR_R2I : DIR_I2R;
  }

  /** From a shared secret of at least 32 bytes (both sides pass the same secret and context). */
  static fromSharedSecret(secret: Uint8Array, opts: ChannelOptions): SecureChannel {
    assertBytes(secret, undefined, "channel secret");
    if (secret.length < 32) throw new CryptoError("invalid_input", "channel secret too short");
    return new SecureChannel(secret, opts);
  }

  /**
   * From X25519 between this side's (ephemeral) secret key and the peer's public key. Both public
   * keys, in initiator/responder order, are bound into the context. Authenticating the peer's key
   * (e.g. an Ed25519 signature over it) is the caller's handshake.
   */
  static fromX25519(
    secretKey: Uint8Array,
    peerPublicKey: Uint8Array,
    opts: ChannelOptions,
  ): SecureChannel {
    const mine = x25519PublicKey(secretKey);
    const shared = x25519SharedSecret(secretKey, peerPublicKey);
    const [iPub, rPub] = opts.role === "initiator" ? [mine, peerPublicKey] : [peerPublicKey, mine];
    const context = concatBytes(iPub, rPub, opts.context ?? new Uint8Array(0));
    try {
      return new SecureChannel(shared, { ...opts, context });
    } finally {
      shared.fill(0);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  seal(plaintext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (this.#closed) throw new CryptoError("channel_closed", "channel is closed");
    assertBytes(plaintext, undefined, "plaintext");
    assertBytes(aad, undefined, "aad");
    if (this.#sendCounter >= MAX_CHANNEL_MESSAGES) {
      throw new CryptoError("limit_exceeded", "channel message limit reached: open a new channel");
    }
    const counter = this.#sendCounter++;
    const header = new Uint8Array(COUNTER_BYTES);
    new DataView(header.buffer).setBigUint64(0, BigInt(counter));
    const body = chacha20Poly1305EncryptRaw(
      this.#sendKey,
      nonceFor(counter),
      plaintext,
      concatBytes(header, this.#sendDir, aad),
    );
    return concatBytes(header, body);
  }

  open(message: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (this.#closed) throw new CryptoError("channel_closed", "channel is closed");
    if (!(message instanceof Uint8Array) || message.length < COUNTER_BYTES + TAG_BYTES) {
      throw new CryptoError("decrypt_failed", "channel message too short");
    }
    assertBytes(aad, undefined, "aad");
    const big = new DataView(message.buffer, message.byteOffset, COUNTER_BYTES).getBigUint64(0);
    if (big >= BigInt(MAX_CHANNEL_MESSAGES)) {
      throw new CryptoError("out_of_window", "channel counter beyond limit");
    }
    const counter = Number(big);
    this.#checkFresh(counter);
    const plaintext = chacha20Poly1305DecryptRaw(
      this.#recvKey,
      nonceFor(counter),
      message.subarray(COUNTER_BYTES),
      concatBytes(message.subarray(0, COUNTER_BYTES), this.#recvDir, aad),
    );
    this.#accept(counter);
    return plaintext;
  }

  /** Forgets both keys; every later call fails. */
  close(): void {
    this.#closed = true;
    this.#sendKey.fill(0);
    this.#recvKey.fill(0);
  }

  #checkFresh(counter: number): void {
    if (this.window === 0) {
      if (counter <= this.#highest) throw new CryptoError("replay", `replayed message ${counter}`);
      if (counter !== this.#highest + 1) {
        throw new CryptoError(
          "out_of_order",
          `expected message ${this.#highest + 1}, got ${counter}`,
        );
      }
      return;
    }
    if (counter > this.#highest) return;
    const age = this.#highest - counter;
    if (age >= this.window) throw new CryptoError("out_of_window", `message ${counter} too old`);
    if ((this.#seen >> BigInt(age)) & 1n)
      throw new CryptoError("replay", `replayed message ${counter}`);
  }

  #accept(counter: number): void {
    if (counter > this.#highest) {
      const shift = counter - this.#highest;
      const mask = (1n << BigInt(Math.max(this.window, 1))) - 1n;
      this.#seen = shift >= 1024 ? 1n : ((this.#seen << BigInt(shift)) | 1n) & mask;
      this.#highest = counter;
    } else {
      this.#seen |= 1n << BigInt(this.#highest - counter);
    }
  }
}
