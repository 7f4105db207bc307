// The PKCS#11 KeyProvider (`key_store_type = "hsm"` / `hsm_enabled`, see docs/configuration.md):
// Ed25519 keys generated inside a token (CKM_EC_EDWARDS_KEY_PAIR_GEN), sensitive and
// non-extractable, signing with CKM_EDDSA; only the public half ever leaves the token. Keys are
// found by CKA_ID (the raw RFC 7638 thumbprint) and labelled `<key_label>:<kid>`. PKCS#11 signs one
// operation at a time per session, so signing goes through a small pool of sessions (each sign runs
// on libuv's thread pool through pkcs11js's async call), and the audit sequencer's batches still
// sign in parallel. Start-up refuses, naming the setting to fix, when the module, the token, the
// PIN or the EdDSA mechanisms are wrong; nothing falls back to software keys.
import { readFile, stat } from "node:fs/promises";
import pkcs11js from "pkcs11js";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { CryptoError, ed25519Kid, type Signer } from "../../shared/crypto";
import { fromBase64Url } from "../../shared/encoding";
import type { KeyProvider, ProvidedKey } from "../../shared/keys";

// PKCS#11 v3.0 EdDSA, by number: pkcs11js 2.1 has no constants for them.
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
export const CKK_EC_EDWARDS = 0x40;
/** DER of the OID 1.3.101.112 (id-Ed25519), the CKA_EC_PARAMS of an Ed25519 key. */
const ED25519_PARAMS = Buffer.from("06032b6570", "hex");

/** The file `hsm_config_path` names (JSON, or TOML by its `.toml` extension). */
export const hsmConfigSchema = z
  .strictObject({
    /** Path of the PKCS#11 module (.so), e.g. /usr/lib/softhsm/libsofthsm2.so. */
    module: z.string().min(1),
    /** The token, by label (preferred: slot ids can change when tokens are added). */
    token_label: z.string().min(1).max(32).optional(),
    /** Or the slot id. */
    slot: z.number().int().nonnegative().optional(),
    /** The user PIN: a file holding it (not readable by group or others), */
    pin_file: z.string().min(1).optional(),
    /** or the name of an environment variable holding it. Never the PIN itself. */
    pin_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    /** CKA_LABEL prefix of Sigil's keys in the token. */
    key_label: z.string().min(1).max(64).default("sigil"),
    /** Sessions in the signing pool (each signs one message at a time). */
    sessions: z.number().int().min(1).max(64).default(4),
  })
  .refine((c) => (c.token_label === undefined) !== (c.slot === undefined), {
    message: "give exactly one of token_label or slot",
    path: ["token_label"],
  })
  .refine((c) => (c.pin_file === undefined) !== (c.pin_env === undefined), {
    message: "give exactly one of pin_file or pin_env (the PIN itself is never in a config file)",
    path: ["pin_file"],
  });
export type HsmConfig = z.infer<typeof hsmConfigSchema>;

/** A start-up refusal: `setting` is what to fix (a key of the HSM config file, or hsm_config_path). */
export class HsmConfigError extends Error {
  override readonly name = "HsmConfigError";
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }
}

/** Reads and validates the file `hsm_config_path` names. */
export async function readHsmConfig(path: string): Promise<HsmConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new HsmConfigError(
      "hsm_config_path",
      `[security] hsm_config_path: cannot read ${path}: ${(e as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = path.endsWith(".toml") ? parseToml(text) : JSON.parse(text);
  } catch (e) {
    throw new HsmConfigError(
      "hsm_config_path",
      `[security] hsm_config_path: ${path} is not valid ${path.endsWith(".toml") ? "TOML" : "JSON"}: ${(e as Error).message}`,
    );
  }
  const parsed = hsmConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue?.path.join(".") || "(file)";
    throw new HsmConfigError(key, `${path}: ${key}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

async function readPin(cfg: HsmConfig, where: string, env: NodeJS.ProcessEnv): Promise<string> {
  if (cfg.pin_env !== undefined) {
    const pin = env[cfg.pin_env];
    if (!pin) {
      throw new HsmConfigError(
        "pin_env",
        `${where}: pin_env: environment variable ${cfg.pin_env} is not set`,
      );
    }
    return pin;
  }
  const file = cfg.pin_file as string;
  let mode: number;
  let text: string;
  try {
    mode = (await stat(file)).mode;
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new HsmConfigError(
      "pin_file",
      `${where}: pin_file: cannot read ${file}: ${(e as Error).message}`,
    );
  }
  if ((mode & 0o077) !== 0) {
    throw new HsmConfigError(
      "pin_file",
      `${where}: pin_file: ${file} is readable by group or others (chmod 600 it)`,
    );
  }
  const pin = text.replace(/\r?\n$/, "");
  if (pin.length === 0)
    throw new HsmConfigError("pin_file", `${where}: pin_file: ${file} is empty`);
  return pin;
}

const rv = (e: unknown): string =>
  e instanceof pkcs11js.Pkcs11Error
    ? e.message.split("\n")[0]?.trim() || String(e.code)
    : String(e);

// One loaded and initialised module per path in a process: C_Initialize/C_Finalize are
// process-wide, so providers on the same module share it and the last one to close finalises.
const modules = new Map<string, { p11: pkcs11js.PKCS11; users: number }>();

function openModule(path: string, where: string): pkcs11js.PKCS11 {
  const open = modules.get(path);
  if (open) {
    open.users++;
    return open.p11;
  }
  const p11 = new pkcs11js.PKCS11();
  try {
    p11.load(path);
  } catch (e) {
    throw new HsmConfigError(
      "module",
      `${where}: module: cannot load ${path}: ${(e as Error).message}`,
    );
  }
  try {
    // OS locking: signs run concurrently on libuv threads, on different sessions.
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (
      !(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED)
    ) {
      p11.close();
      throw new HsmConfigError(
        "module",
        `${where}: module: C_Initialize of ${path} failed: ${rv(e)}`,
      );
    }
  }
  modules.set(path, { p11, users: 1 });
  return p11;
}

function closeModule(path: string): void {
  const open = modules.get(path);
  if (!open || --open.users > 0) return;
  modules.delete(path);
  try {
    open.p11.C_Finalize();
  } finally {
    open.p11.close();
  }
}

export interface Pkcs11ProviderOptions {
  /** Where the config came from, for messages (the hsm_config_path). */
  source?: string;
  env?: NodeJS.ProcessEnv;
  /** Overrides the config's `sessions` (the bench compares one session with the pool). */
  sessions?: number;
}

/** Opens the provider from the file `hsm_config_path` names. */
export async function openPkcs11ProviderFromFile(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Pkcs11KeyProvider> {
  return Pkcs11KeyProvider.open(await readHsmConfig(path), { source: path, env });
}

interface Held {
  handle: pkcs11js.Handle;
  publicKey: Uint8Array;
}

export class Pkcs11KeyProvider implements KeyProvider {
  readonly name: string;
  readonly #p11: pkcs11js.PKCS11;
  readonly #module: string;
  readonly #slot: pkcs11js.Handle;
  readonly #label: string;
  readonly #pin: string;
  /** One session for key management (find, generate, destroy); the pool signs. */
  #admin: pkcs11js.Handle;
  readonly #idle: pkcs11js.Handle[] = [];
  readonly #waiting: { resolve: (s: pkcs11js.Handle) => void; reject: (e: Error) => void }[] = [];
  /** Sessions in the pool (idle or lent out), and how many are lent out. */
  #size: number;
  #busy = 0;
  #drained: (() => void) | undefined;
  readonly #held = new Map<string, Promise<Held>>();
  #closed = false;

  private constructor(
    p11: pkcs11js.PKCS11,
    cfg: HsmConfig,
    slot: pkcs11js.Handle,
    pin: string,
    sessions: pkcs11js.Handle[],
  ) {
    this.#p11 = p11;
    this.#module = cfg.module;
    this.#slot = slot;
    this.#label = cfg.key_label;
    this.#pin = pin;
    this.#admin = sessions[0] as pkcs11js.Handle;
    this.#idle.push(...sessions.slice(1));
    this.#size = this.#idle.length;
    const token = p11.C_GetTokenInfo(slot).label.trim();
    this.name = `pkcs11:${token}`;
  }

  /** Loads the module, finds the token, checks EdDSA, logs in and opens the session pool. */
  static async open(cfg: HsmConfig, opts: Pkcs11ProviderOptions = {}): Promise<Pkcs11KeyProvider> {
    const where = opts.source ?? "hsm config";
    const pin = await readPin(cfg, where, opts.env ?? process.env);
    const p11 = openModule(cfg.module, where);
    const sessions: pkcs11js.Handle[] = [];
    try {
      const slot = findSlot(p11, cfg, where);
      const mechs = new Set(p11.C_GetMechanismList(slot));
      const missing = [
        [CKM_EC_EDWARDS_KEY_PAIR_GEN, "CKM_EC_EDWARDS_KEY_PAIR_GEN"],
        [CKM_EDDSA, "CKM_EDDSA"],
      ].filter(([m]) => !mechs.has(m as number));
      if (missing.length > 0) {
        throw new HsmConfigError(
          cfg.token_label !== undefined ? "token_label" : "slot",
          `${where}: ${cfg.token_label !== undefined ? "token_label" : "slot"}: the token does not support Ed25519 (no ${missing.map(([, n]) => n).join(", ")}); choose a token or module with PKCS#11 v3.0 EdDSA`,
        );
      }
      const n = opts.sessions ?? cfg.sessions;
      for (let i = 0; i <= n; i++) {
        sessions.push(
          p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION),
        );
      }
      try {
        // One login covers every session of this application on the token.
        p11.C_Login(sessions[0] as pkcs11js.Handle, pkcs11js.CKU_USER, pin);
      } catch (e) {
        if (
          !(e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_USER_ALREADY_LOGGED_IN)
        ) {
          const setting = cfg.pin_env !== undefined ? "pin_env" : "pin_file";
          throw new HsmConfigError(
            setting,
            `${where}: ${setting}: the token refused the PIN: ${rv(e)}`,
          );
        }
      }
      return new Pkcs11KeyProvider(p11, cfg, slot, pin, sessions);
    } catch (e) {
      for (const s of sessions) {
        try {
          p11.C_CloseSession(s);
        } catch {}
      }
      closeModule(cfg.module);
      if (e instanceof HsmConfigError) throw e;
      throw new HsmConfigError("module", `${where}: module ${cfg.module}: ${rv(e)}`);
    }
  }

  async generateSigningKey(): Promise<ProvidedKey> {
    this.#check();
    // A pool session: the admin session is only ever used synchronously, so no two operations
    // share a session at once (PKCS#11 sessions are not for concurrent use).
    const s = await this.#acquire();
    try {
      return await this.#generate(s);
    } finally {
      this.#release(s, false);
    }
  }

  async #generate(s: pkcs11js.Handle): Promise<ProvidedKey> {
    const p11 = this.#p11;
    const tmp = Buffer.from(crypto.getRandomValues(new Uint8Array(16)));
    const common = [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
      { type: pkcs11js.CKA_ID, value: tmp },
      { type: pkcs11js.CKA_LABEL, value: `${this.#label}:pending` },
    ];
    const pair = await p11.C_GenerateKeyPairAsync(
      s,
      { mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN },
      [
        ...common,
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_VERIFY, value: true },
        { type: pkcs11js.CKA_EC_PARAMS, value: ED25519_PARAMS },
      ],
      [
        ...common,
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_SIGN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        // Never leaves the token, in the clear or wrapped.
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      ],
    );
    try {
      const publicKey = this.#publicKeyOf(pair.publicKey);
      const kid = ed25519Kid(publicKey);
      const named = [
        { type: pkcs11js.CKA_ID, value: Buffer.from(fromBase64Url(kid)) },
        { type: pkcs11js.CKA_LABEL, value: `${this.#label}:${kid}` },
      ];
      p11.C_SetAttributeValue(s, pair.publicKey, named);
      p11.C_SetAttributeValue(s, pair.privateKey, named);
      this.#held.set(kid, Promise.resolve({ handle: pair.privateKey, publicKey }));
      return { kid, publicKey: publicKey.slice() };
    } catch (e) {
      for (const h of [pair.privateKey, pair.publicKey]) {
        try {
          p11.C_DestroyObject(s, h);
        } catch {}
      }
      throw e;
    }
  }

  async getSigner(kid: string): Promise<Signer> {
    this.#check();
    let held = this.#held.get(kid);
    if (held === undefined) {
      held = this.#find(kid);
      this.#held.set(kid, held);
      held.catch(() => this.#held.delete(kid));
    }
    return held.then(({ handle, publicKey }) => ({
      kid,
      publicKey: publicKey.slice(),
      sign: (message: Uint8Array) => this.#sign(handle, message),
    }));
  }

  /**
   * Destroys the private key; the public key object stays in the token (rotation keeps it, and
   * the registry keeps the public key that verifies what it signed).
   */
  async destroyKey(kid: string): Promise<void> {
    this.#check();
    this.#held.delete(kid);
    for (const h of this.#findObjects(pkcs11js.CKO_PRIVATE_KEY, kid)) {
      this.#p11.C_DestroyObject(this.#admin, h);
    }
  }

  async listKeys(): Promise<string[]> {
    this.#check();
    const p11 = this.#p11;
    const s = this.#admin;
    p11.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
    ]);
    let handles: pkcs11js.Handle[];
    try {
      handles = p11.C_FindObjects(s, 10_000);
    } finally {
      p11.C_FindObjectsFinal(s);
    }
    const prefix = `${this.#label}:`;
    const kids: string[] = [];
    for (const h of handles) {
      const [label] = p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_LABEL }]);
      const text = label?.value instanceof Buffer ? label.value.toString("utf8") : "";
      if (text.startsWith(prefix) && text !== `${prefix}pending`)
        kids.push(text.slice(prefix.length));
    }
    return kids.sort();
  }

  /** For GET /health: the token answers and this application is logged in to it. */
  async health(): Promise<{ ok: boolean; detail: string }> {
    if (this.#closed) return { ok: false, detail: `${this.name} is closed` };
    try {
      // CKS_RW_USER_FUNCTIONS (3): a read/write session of a logged-in user.
      const { state } = this.#p11.C_GetSessionInfo(this.#admin);
      if (state !== 3) return { ok: false, detail: `${this.name}: not logged in (state ${state})` };
      return { ok: true, detail: `${this.name}: logged in, ${this.#size} signing sessions` };
    } catch (e) {
      return { ok: false, detail: `${this.name}: ${rv(e)}` };
    }
  }

  /**
   * Refuses new work, lets the operations in flight finish, closes every session and, if this
   * was the module's last user, finalises it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new CryptoError("channel_closed", `${this.name} is closed`);
    for (const w of this.#waiting.splice(0)) w.reject(closed);
    if (this.#busy > 0) await new Promise<void>((r) => (this.#drained = r));
    for (const s of [this.#admin, ...this.#idle]) {
      try {
        this.#p11.C_CloseSession(s);
      } catch {}
    }
    this.#idle.length = 0;
    closeModule(this.#module);
  }

  #check(): void {
    if (this.#closed) throw new CryptoError("channel_closed", `${this.name} is closed`);
  }

  async #find(kid: string): Promise<Held> {
    const [priv] = this.#findObjects(pkcs11js.CKO_PRIVATE_KEY, kid);
    const [pub] = this.#findObjects(pkcs11js.CKO_PUBLIC_KEY, kid);
    if (priv === undefined || pub === undefined) {
      throw new CryptoError("invalid_key", `${this.name} holds no private key for ${kid}`);
    }
    const publicKey = this.#publicKeyOf(pub);
    // Self-certifying: a relabelled object in the token is not taken for the key it names.
    if (ed25519Kid(publicKey) !== kid) {
      throw new CryptoError("invalid_key", `${this.name}: the key labelled ${kid} is another key`);
    }
    return { handle: priv, publicKey };
  }

  #findObjects(cls: number, kid: string): pkcs11js.Handle[] {
    let id: Buffer;
    try {
      id = Buffer.from(fromBase64Url(kid));
    } catch {
      return [];
    }
    if (id.length !== 32) return [];
    const p11 = this.#p11;
    const s = this.#admin;
    p11.C_FindObjectsInit(s, [
      { type: pkcs11js.CKA_CLASS, value: cls },
      { type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS },
      { type: pkcs11js.CKA_ID, value: id },
    ]);
    try {
      return p11.C_FindObjects(s, 8);
    } finally {
      p11.C_FindObjectsFinal(s);
    }
  }

  /** CKA_EC_POINT: a DER OCTET STRING around the 32 bytes (some modules give them bare). */
  #publicKeyOf(handle: pkcs11js.Handle): Uint8Array {
    const [a] = this.#p11.C_GetAttributeValue(this.#admin, handle, [
      { type: pkcs11js.CKA_EC_POINT },
    ]);
    const v = a?.value;
    if (!(v instanceof Buffer))
      throw new CryptoError("invalid_key", "public key without CKA_EC_POINT");
    if (v.length === 34 && v[0] === 0x04 && v[1] === 0x20) return new Uint8Array(v.subarray(2));
    if (v.length === 32) return new Uint8Array(v);
    throw new CryptoError("invalid_key", "CKA_EC_POINT is not an Ed25519 point");
  }

  async #sign(handle: pkcs11js.Handle, message: Uint8Array): Promise<Uint8Array> {
    this.#check();
    const s = await this.#acquire();
    let broken = false;
    try {
      this.#p11.C_SignInit(s, { mechanism: CKM_EDDSA }, handle);
      const sig = await this.#p11.C_SignAsync(s, Buffer.from(message), Buffer.alloc(64));
      return new Uint8Array(sig);
    } catch (e) {
      broken = e instanceof pkcs11js.Pkcs11Error && this.#lost(e.code);
      throw new CryptoError("invalid_key", `${this.name}: signing failed: ${rv(e)}`, { cause: e });
    } finally {
      this.#release(s, broken);
    }
  }

  #lost(code: number): boolean {
    return (
      code === pkcs11js.CKR_SESSION_HANDLE_INVALID ||
      code === pkcs11js.CKR_SESSION_CLOSED ||
      code === pkcs11js.CKR_USER_NOT_LOGGED_IN ||
      code === pkcs11js.CKR_OPERATION_ACTIVE
    );
  }

  #acquire(): Promise<pkcs11js.Handle> {
    if (this.#closed) {
      return Promise.reject(new CryptoError("channel_closed", `${this.name} is closed`));
    }
    const s = this.#idle.pop();
    if (s !== undefined) {
      this.#busy++;
      return Promise.resolve(s);
    }
    if (this.#size === 0) {
      return Promise.reject(
        new CryptoError("invalid_key", `${this.name}: no session left (the token is gone?)`),
      );
    }
    return new Promise((resolve, reject) =>
      this.#waiting.push({
        resolve: (h) => {
          this.#busy++;
          resolve(h);
        },
        reject,
      }),
    );
  }

  /** A session that failed in a way that may have broken it is replaced by a fresh one. */
  #release(s: pkcs11js.Handle, broken: boolean): void {
    this.#busy--;
    if (this.#closed) {
      try {
        this.#p11.C_CloseSession(s);
      } catch {}
      if (this.#busy === 0) this.#drained?.();
      return;
    }
    let next = s;
    if (broken) {
      try {
        this.#p11.C_CloseSession(s);
      } catch {}
      try {
        next = this.#p11.C_OpenSession(
          this.#slot,
          pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION,
        );
        try {
          this.#p11.C_Login(next, pkcs11js.CKU_USER, this.#pin);
        } catch {}
      } catch {
        // The pool shrinks; with no session left, whoever waits is told rather than left hanging.
        if (--this.#size === 0) {
          const gone = new CryptoError("invalid_key", `${this.name}: no session left`);
          for (const w of this.#waiting.splice(0)) w.reject(gone);
        }
        return;
      }
    }
    const waiter = this.#waiting.shift();
    if (waiter) waiter.resolve(next);
    else this.#idle.push(next);
  }
}

function findSlot(p11: pkcs11js.PKCS11, cfg: HsmConfig, where: string): pkcs11js.Handle {
  const slots = p11.C_GetSlotList(true);
  if (cfg.slot !== undefined) {
    const want = cfg.slot;
    const slot = slots.find((s) => s.readUIntLE(0, Math.min(6, s.length)) === want);
    if (!slot) throw new HsmConfigError("slot", `${where}: slot: no token in slot ${want}`);
    return slot;
  }
  const labels: string[] = [];
  for (const s of slots) {
    const info = p11.C_GetTokenInfo(s);
    const label = info.label.trim();
    labels.push(label);
    if (label !== cfg.token_label) continue;
    if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) break;
    return s;
  }
  throw new HsmConfigError(
    "token_label",
    `${where}: token_label: no initialised token labelled "${cfg.token_label}" (tokens present: ${labels.map((l) => JSON.stringify(l)).join(", ") || "none"})`,
  );
}
