// KeyManager: the security model's key hierarchy on top of the registry and provider ports.
//
//   root / service keys  role "service" or "admin": sign job envelopes, policies, audit checkpoints
//   per-agent keys       role "agent": sign an agent's requests
//   worker keys          role "worker": sign job results on a worker node
//   auditor keys         role "auditor"
//   session keys         ephemeral, issued under a parent key (parent = its kid), minutes-long life
//   external tool keys   role "tool": public half only (SchemaPin/TOFU), registered, never generated
//   held keys            role "held": an agent's service-held key for POST /v1/sign, under the
//                        subject held:<agent>; never authenticates a request, and is revoked once
//                        its agent has no usable key left (revokeOrphanedHeldKeys)
//
// Rotation policy (key_rotation_interval_days, default 90): every generated key gets
// expiresAt = notBefore + interval, and usableForNewRequest refuses it after that. We enforce it
// (secure by default: a forgotten rotation fails closed instead of keeping an old key alive); run
// rotateDue() on a schedule with a lead time so rotation happens before expiry. Signatures made
// inside a key's window stay verifiable after it is rotated, expired or revoked (validAt).
import { CryptoError, type Signer } from "../crypto";
import type { KeyLimits } from "../limits/resolve";
import type { KeyProvider } from "./provider";
import {
  heldSubject,
  isHeldKey,
  type KeyAuditEvent,
  type KeyRecord,
  KeyRegistryError,
  type KeyRole,
  keyAuditEvent,
  type RegisterKeyInput,
  type RevokeOptions,
  rotationDue,
  usableForNewRequest,
} from "./record";
import type { KeyRegistry } from "./registry";

const DAY_MS = 86_400_000;
export const DEFAULT_ROTATION_INTERVAL_DAYS = 90;
export const DEFAULT_SESSION_LIFETIME_MS = 15 * 60_000;

export interface KeyManagerOptions {
  registry: KeyRegistry;
  provider: KeyProvider;
  /** key_rotation_interval_days from the config. */
  rotationIntervalDays?: number;
  /** Clock port; Date.now by default. */
  now?: () => number;
}

export interface KeyChange {
  record: KeyRecord;
  /** What the caller appends to the audit log. */
  event: KeyAuditEvent;
}

export class KeyManager {
  readonly #registry: KeyRegistry;
  readonly #provider: KeyProvider;
  readonly #intervalMs: number;
  readonly #now: () => number;

  constructor(opts: KeyManagerOptions) {
    const days = opts.rotationIntervalDays ?? DEFAULT_ROTATION_INTERVAL_DAYS;
    if (!Number.isFinite(days) || days <= 0 || days > 3650) {
      throw new KeyRegistryError("invalid", "key_rotation_interval_days must be in (0, 3650]");
    }
    this.#registry = opts.registry;
    this.#provider = opts.provider;
    this.#intervalMs = Math.round(days * DAY_MS);
    this.#now = opts.now ?? Date.now;
  }

  get rotationIntervalMs(): number {
    return this.#intervalMs;
  }

  /** Generates a key in the provider and registers it (admin, agent, worker, auditor, service). */
  async createKey(input: {
    role: KeyRole;
    subject: string;
    lifetimeMs?: number;
  }): Promise<KeyChange> {
    if (input.role === "tool") {
      throw new KeyRegistryError("invalid", "tool keys are external: use registerExternalKey");
    }
    const now = this.#now();
    return this.#generateAndRegister({
      role: input.role,
      subject: input.subject,
      createdAt: now,
      expiresAt: now + (input.lifetimeMs ?? this.#intervalMs),
    });
  }

  /** An ephemeral key under a usable parent: same role and subject, short life, never past the parent's. */
  async createSessionKey(
    parentKid: string,
    lifetimeMs = DEFAULT_SESSION_LIFETIME_MS,
  ): Promise<KeyChange> {
    const now = this.#now();
    const parent = await this.#registry.get(parentKid);
    if (!parent || !usableForNewRequest(parent, now)) {
      throw new KeyRegistryError("not_active", `parent key ${parentKid} is not usable`);
    }
    if (!(lifetimeMs > 0) || lifetimeMs > DAY_MS) {
      throw new KeyRegistryError("invalid", "session key lifetime must be in (0, 1 day]");
    }
    const expiresAt = Math.min(now + lifetimeMs, parent.expiresAt ?? Number.MAX_SAFE_INTEGER);
    return this.#generateAndRegister({
      role: parent.role,
      subject: parent.subject,
      createdAt: now,
      expiresAt,
      parent: parent.kid,
      groups: parent.groups,
      trust: parent.trust,
    });
  }

  /** Registers someone else's public key (tools, external agents); we hold no private half. */
  async registerExternalKey(input: {
    role: KeyRole;
    subject: string;
    publicKey: Uint8Array;
    expiresAt?: number;
    groups?: readonly string[];
    trust?: number;
    limits?: KeyLimits;
  }): Promise<KeyChange> {
    const record = await this.#registry.register({ ...input, createdAt: this.#now() });
    return { record, event: keyAuditEvent("key.created", record) };
  }

  /** Replaces an active key with a fresh one and destroys the old private half. */
  async rotate(kid: string): Promise<KeyChange> {
    const now = this.#now();
    const old = await this.#registry.get(kid);
    if (!old) throw new KeyRegistryError("not_found", `unknown key ${kid}`);
    const fresh = await this.#provider.generateSigningKey();
    let record: KeyRecord;
    try {
      record = await this.#registry.rotate(kid, fresh.publicKey, now, {
        expiresAt: now + this.#lifetimeOf(old),
      });
    } catch (e) {
      await this.#provider.destroyKey(fresh.kid);
      throw e;
    }
    await this.#destroyQuietly(kid);
    return { record, event: keyAuditEvent("key.rotated", record) };
  }

  async revoke(kid: string, opts?: RevokeOptions): Promise<KeyChange> {
    const record = await this.#registry.revoke(kid, this.#now(), opts);
    await this.#destroyQuietly(kid);
    return { record, event: keyAuditEvent("key.revoked", record) };
  }

  /** A signer for a key that may serve new requests now; anything else is refused. */
  async signer(kid: string): Promise<Signer> {
    const r = await this.#registry.get(kid);
    if (!r || !usableForNewRequest(r, this.#now())) {
      throw new CryptoError("invalid_key", `key ${kid} is not usable for new requests`);
    }
    return this.#provider.getSigner(kid);
  }

  /** The active key of a subject (the newest usable one), if any. */
  async currentKey(role: KeyRole, subject: string): Promise<KeyRecord | undefined> {
    const now = this.#now();
    const keys = await this.#registry.list(role);
    return keys
      .filter((r) => r.subject === subject && r.parent === undefined && usableForNewRequest(r, now))
      .at(-1);
  }

  /**
   * Revokes the held keys of the agent `ownerSubject` (active or rotated) once that agent has no
   * usable agent key of its own left: a held key never outlives the agent it signs for. Returns the
   * changes to audit; none while some key of the agent can still authenticate.
   */
  async revokeOrphanedHeldKeys(ownerSubject: string, reason: string): Promise<KeyChange[]> {
    const now = this.#now();
    const owners = (await this.#registry.list("agent")).filter(
      (r) => r.subject === ownerSubject && !isHeldKey(r) && usableForNewRequest(r, now),
    );
    if (owners.length > 0) return [];
    const subject = heldSubject(ownerSubject);
    // Role held, and held keys made before that role existed (agent, held:…).
    const held = [
      ...(await this.#registry.list("held")),
      ...(await this.#registry.list("agent")),
    ].filter((r) => r.subject === subject && isHeldKey(r) && r.status !== "revoked");
    const changes: KeyChange[] = [];
    for (const r of held) {
      try {
        changes.push(await this.revoke(r.kid, { reason }));
      } catch (e) {
        // Revoked meanwhile by a concurrent call: the outcome we want.
        if (!(e instanceof KeyRegistryError && e.code === "already_revoked")) throw e;
      }
    }
    return changes;
  }

  /** Active generated keys within `leadDays` of their expiry. */
  async dueForRotation(leadDays = 7): Promise<KeyRecord[]> {
    const now = this.#now();
    const held = new Set(await this.#provider.listKeys());
    return (await this.#registry.list()).filter(
      (r) => held.has(r.kid) && r.parent === undefined && rotationDue(r, now, leadDays * DAY_MS),
    );
  }

  /** Rotates every key due; returns the changes to audit. One failure does not stop the others. */
  async rotateDue(
    leadDays = 7,
  ): Promise<{ rotated: KeyChange[]; failed: { kid: string; error: unknown }[] }> {
    const rotated: KeyChange[] = [];
    const failed: { kid: string; error: unknown }[] = [];
    for (const r of await this.dueForRotation(leadDays)) {
      try {
        rotated.push(await this.rotate(r.kid));
      } catch (error) {
        failed.push({ kid: r.kid, error });
      }
    }
    return { rotated, failed };
  }

  #lifetimeOf(r: KeyRecord): number {
    return r.expiresAt === undefined
      ? this.#intervalMs
      : Math.min(r.expiresAt - r.notBefore, this.#intervalMs);
  }

  async #generateAndRegister(
    input: Omit<RegisterKeyInput, "publicKey"> & { expiresAt: number },
  ): Promise<KeyChange> {
    const fresh = await this.#provider.generateSigningKey();
    try {
      const record = await this.#registry.register({ ...input, publicKey: fresh.publicKey });
      return { record, event: keyAuditEvent("key.created", record) };
    } catch (e) {
      await this.#provider.destroyKey(fresh.kid);
      throw e;
    }
  }

  // The registry already refuses the old key for new requests; a failed delete must not undo that.
  async #destroyQuietly(kid: string): Promise<void> {
    try {
      await this.#provider.destroyKey(kid);
    } catch {}
  }
}
