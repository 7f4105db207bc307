// The KeyProvider port: who holds private keys and signs with them. The software provider (default)
// keeps each private key encrypted at rest in a SecretStore and signs on WebCrypto; an HSM (PKCS#11)
// or cloud KMS provider implements the same four methods and never exports a private key.
import { CryptoError, createSigner, generateEd25519KeyPair, type Signer } from "../crypto";
import {
  DEFAULT_SCRYPT,
  decryptSecretKey,
  type EncryptedKey,
  encryptSecretKey,
  type ScryptParams,
} from "./at-rest";

export interface ProvidedKey {
  kid: string;
  publicKey: Uint8Array;
}

export interface KeyProvider {
  /** e.g. "software", "pkcs11:<slot>", "aws-kms:<region>". */
  readonly name: string;
  /** Creates an Ed25519 signing key inside the provider and returns its public half. */
  generateSigningKey(): Promise<ProvidedKey>;
  /** A signer for a key the provider holds; rejects (CryptoError "invalid_key") if it holds none. */
  getSigner(kid: string): Promise<Signer>;
  /** Destroys the private half (after rotation or revocation). Idempotent. */
  destroyKey(kid: string): Promise<void>;
  /** kids of the private keys the provider holds. */
  listKeys(): Promise<string[]>;
}

/** Where the software provider keeps encrypted private keys (files on Node, DO storage on the edge). */
export interface SecretStore {
  /** Stores a blob under its kid; rejects if one is already there (keys are never overwritten). */
  put(blob: EncryptedKey): Promise<void>;
  get(kid: string): Promise<EncryptedKey | undefined>;
  delete(kid: string): Promise<void>;
  list(): Promise<string[]>;
}

export class MemorySecretStore implements SecretStore {
  readonly #blobs = new Map<string, string>();
  async put(blob: EncryptedKey): Promise<void> {
    if (this.#blobs.has(blob.kid))
      throw new CryptoError("invalid_key", `key ${blob.kid} already stored`);
    this.#blobs.set(blob.kid, JSON.stringify(blob));
  }
  async get(kid: string): Promise<EncryptedKey | undefined> {
    const s = this.#blobs.get(kid);
    return s === undefined ? undefined : (JSON.parse(s) as EncryptedKey);
  }
  async delete(kid: string): Promise<void> {
    this.#blobs.delete(kid);
  }
  async list(): Promise<string[]> {
    return [...this.#blobs.keys()].sort();
  }
}

export interface SoftwareKeyProviderOptions {
  /** Passphrase or secret the key-encryption key is derived from. */
  secret: string | Uint8Array;
  store?: SecretStore;
  scrypt?: ScryptParams;
  /** Signer factory: WebCrypto by default; Node can plug in the worker-thread pool. */
  signerFactory?: (secretKey: Uint8Array, kid: string) => Promise<Signer>;
}

export class SoftwareKeyProvider implements KeyProvider {
  readonly name = "software";
  readonly #store: SecretStore;
  readonly #secret: string | Uint8Array;
  readonly #scrypt: ScryptParams;
  readonly #factory: (secretKey: Uint8Array, kid: string) => Promise<Signer>;
  // Decrypting costs a scrypt run: keep ready signers (their keys are non-extractable CryptoKeys).
  readonly #signers = new Map<string, Promise<Signer>>();

  constructor(opts: SoftwareKeyProviderOptions) {
    this.#secret = typeof opts.secret === "string" ? opts.secret : opts.secret.slice();
    this.#store = opts.store ?? new MemorySecretStore();
    this.#scrypt = opts.scrypt ?? DEFAULT_SCRYPT;
    this.#factory = opts.signerFactory ?? createSigner;
  }

  async generateSigningKey(): Promise<ProvidedKey> {
    const { secretKey } = await generateEd25519KeyPair();
    try {
      return await this.importSigningKey(secretKey);
    } finally {
      secretKey.fill(0);
    }
  }

  /** Takes custody of an existing Ed25519 seed (e.g. migrated from another system). */
  async importSigningKey(secretKey: Uint8Array): Promise<ProvidedKey> {
    const blob = await encryptSecretKey({ crv: "Ed25519", secretKey }, this.#secret, this.#scrypt);
    await this.#store.put(blob);
    const signer = await this.#factory(secretKey, blob.kid);
    this.#signers.set(blob.kid, Promise.resolve(signer));
    return { kid: blob.kid, publicKey: signer.publicKey.slice() };
  }

  getSigner(kid: string): Promise<Signer> {
    let s = this.#signers.get(kid);
    if (s === undefined) {
      s = this.#load(kid);
      this.#signers.set(kid, s);
      s.catch(() => this.#signers.delete(kid));
    }
    return s;
  }

  async destroyKey(kid: string): Promise<void> {
    this.#signers.delete(kid);
    await this.#store.delete(kid);
  }

  listKeys(): Promise<string[]> {
    return this.#store.list();
  }

  async #load(kid: string): Promise<Signer> {
    const blob = await this.#store.get(kid);
    if (blob === undefined) throw new CryptoError("invalid_key", `no private key for ${kid}`);
    const key = await decryptSecretKey(blob, this.#secret);
    if (key.kid !== kid || key.crv !== "Ed25519") {
      throw new CryptoError("invalid_key", `stored key does not match ${kid}`);
    }
    try {
      return await this.#factory(key.secretKey, kid);
    } finally {
      key.secretKey.fill(0);
    }
  }
}
