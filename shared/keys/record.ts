// Key records: what the registry knows about a public key, and the pure rules that decide whether
// a key may be used. Times are epoch milliseconds.
import { z } from "zod";
import { ed25519Kid } from "../crypto";
import { fromBase64Url, toBase64Url } from "../encoding";
import { type KeyLimits, keyLimitsSchema } from "../limits/resolve";

// gateway: the edge's service key as the Node job gateway knows it (signs envelopes it hands over).
export const KEY_ROLES = [
  "admin",
  "agent",
  "worker",
  "auditor",
  "service",
  "tool",
  "gateway",
] as const;
export type KeyRole = (typeof KEY_ROLES)[number];
export const KEY_STATUSES = ["active", "rotated", "revoked"] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

export interface KeyRecord {
  /** RFC 7638 thumbprint of publicKey: the record is self-certifying, a swapped key changes the kid. */
  kid: string;
  role: KeyRole;
  /** Who holds the key: agent id, worker node id, service name, tool id... */
  subject: string;
  /** Ed25519 public key, 32 bytes. */
  publicKey: Uint8Array;
  status: KeyStatus;
  createdAt: number;
  /** Start of validity. */
  notBefore: number;
  /** End of validity (rotation interval or session lifetime); absent = until rotated or revoked. */
  expiresAt?: number;
  rotatedAt?: number;
  revokedAt?: number;
  revocationReason?: string;
  /** kid of the successor (on a rotated record). */
  rotatedTo?: string;
  /** kid of the predecessor (on the record a rotation created). */
  rotatedFrom?: string;
  /** kid of the key this one was issued under (e.g. an agent key for an ephemeral session key). */
  parent?: string;
  /** Quotas an admin set for this key; each overrides its role's (GOVERNANCE.md "Quotas"). */
  limits?: Readonly<KeyLimits>;
}

export interface RegisterKeyInput {
  role: KeyRole;
  subject: string;
  publicKey: Uint8Array;
  createdAt: number;
  notBefore?: number;
  expiresAt?: number;
  parent?: string;
  limits?: KeyLimits;
}

export interface RotateOptions {
  /** End of validity of the new key; default: the old key's lifetime, counted from now. */
  expiresAt?: number;
}

export interface RevokeOptions {
  reason?: string;
  /**
   * When the key stopped being trustworthy (e.g. the suspected compromise time), <= now. Signatures
   * made (by trusted time) after it stop verifying. Default: now.
   */
  effectiveAt?: number;
}

export type KeyRegistryErrorCode =
  | "not_found"
  | "exists"
  | "not_active"
  | "already_revoked"
  | "invalid"
  | "conflict";

export class KeyRegistryError extends Error {
  override readonly name = "KeyRegistryError";
  constructor(
    readonly code: KeyRegistryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

// ---- pure predicates ----

/**
 * May this key authenticate a new request at `now`? Only an active key inside its validity window:
 * rotated-out, revoked, not-yet-valid and expired (past key_rotation_interval_days) keys may not.
 */
export function usableForNewRequest(record: KeyRecord, now: number): boolean {
  return (
    record.status === "active" &&
    now >= record.notBefore &&
    (record.expiresAt === undefined || now < record.expiresAt)
  );
}

/**
 * Was the key valid at `time`? True inside [notBefore, min(expiresAt, rotatedAt, revokedAt)), so a
 * signature made before a rotation or revocation still verifies. `time` must be a trusted time (when
 * the audit log or the server recorded the signature), never a time the signer claims: a thief
 * holding a revoked key can backdate a claim.
 */
export function validAt(record: KeyRecord, time: number): boolean {
  if (!Number.isFinite(time) || time < record.notBefore) return false;
  for (const end of [record.expiresAt, record.rotatedAt, record.revokedAt]) {
    if (end !== undefined && time >= end) return false;
  }
  return true;
}

/** Is the key at or past `leadMs` before the end of its interval (time to rotate)? */
export function rotationDue(record: KeyRecord, now: number, leadMs = 0): boolean {
  return (
    record.status === "active" && record.expiresAt !== undefined && now >= record.expiresAt - leadMs
  );
}

// ---- state transitions, shared by every adapter so they cannot drift ----

const finiteTime = (t: unknown, what: string): number => {
  if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
    throw new KeyRegistryError("invalid", `${what} must be a non-negative integer (epoch ms)`);
  }
  return t;
};

export function newRecord(input: RegisterKeyInput): KeyRecord {
  if (!KEY_ROLES.includes(input.role))
    throw new KeyRegistryError("invalid", `unknown role ${String(input.role)}`);
  if (
    typeof input.subject !== "string" ||
    input.subject.length === 0 ||
    input.subject.length > 512
  ) {
    throw new KeyRegistryError("invalid", "subject must be a non-empty string (<= 512 chars)");
  }
  if (!(input.publicKey instanceof Uint8Array) || input.publicKey.length !== 32) {
    throw new KeyRegistryError("invalid", "publicKey must be 32 bytes");
  }
  const createdAt = finiteTime(input.createdAt, "createdAt");
  const notBefore = finiteTime(input.notBefore ?? createdAt, "notBefore");
  const r: KeyRecord = {
    kid: ed25519Kid(input.publicKey),
    role: input.role,
    subject: input.subject,
    publicKey: input.publicKey.slice(),
    status: "active",
    createdAt,
    notBefore,
  };
  if (input.expiresAt !== undefined) {
    r.expiresAt = finiteTime(input.expiresAt, "expiresAt");
    if (r.expiresAt <= notBefore)
      throw new KeyRegistryError("invalid", "expiresAt must be after notBefore");
  }
  if (input.parent !== undefined) r.parent = input.parent;
  if (input.limits !== undefined) {
    const limits = keyLimitsSchema.safeParse(input.limits);
    if (!limits.success)
      throw new KeyRegistryError("invalid", `limits: ${limits.error.issues[0]?.message}`);
    // Frozen: records are copied shallowly (cloneRecord), so the object is shared between copies.
    if (Object.keys(limits.data).length > 0) r.limits = Object.freeze(limits.data);
  }
  return r;
}

/** The rotation of `old` to `newPublicKey` at `now`: [updated old record, new record]. */
export function rotation(
  old: KeyRecord,
  newPublicKey: Uint8Array,
  now: number,
  opts: RotateOptions = {},
): [KeyRecord, KeyRecord] {
  finiteTime(now, "now");
  if (old.status !== "active")
    throw new KeyRegistryError("not_active", `key ${old.kid} is ${old.status}`);
  const lifetime = old.expiresAt === undefined ? undefined : old.expiresAt - old.notBefore;
  const expiresAt = opts.expiresAt ?? (lifetime === undefined ? undefined : now + lifetime);
  const next = newRecord({
    role: old.role,
    subject: old.subject,
    publicKey: newPublicKey,
    createdAt: now,
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(old.parent === undefined ? {} : { parent: old.parent }),
    ...(old.limits === undefined ? {} : { limits: old.limits }),
  });
  if (next.kid === old.kid) throw new KeyRegistryError("exists", "rotation to the same key");
  next.rotatedFrom = old.kid;
  const retired: KeyRecord = { ...old, status: "rotated", rotatedAt: now, rotatedTo: next.kid };
  return [retired, next];
}

export function revocation(old: KeyRecord, now: number, opts: RevokeOptions = {}): KeyRecord {
  finiteTime(now, "now");
  if (old.status === "revoked")
    throw new KeyRegistryError("already_revoked", `key ${old.kid} is already revoked`);
  const at = finiteTime(opts.effectiveAt ?? now, "effectiveAt");
  if (at > now)
    throw new KeyRegistryError("invalid", "revocation cannot take effect in the future");
  const r: KeyRecord = { ...old, status: "revoked", revokedAt: at };
  if (opts.reason !== undefined) r.revocationReason = String(opts.reason).slice(0, 512);
  return r;
}

// ---- serialization (stores keep JSON; Redis is not trusted, so reads are validated) ----

const time = z.number().int().nonnegative();
const storedSchema = z.strictObject({
  kid: z.string().min(1),
  role: z.enum(KEY_ROLES),
  subject: z.string().min(1).max(512),
  publicKey: z.string().length(43),
  status: z.enum(KEY_STATUSES),
  createdAt: time,
  notBefore: time,
  expiresAt: time.optional(),
  rotatedAt: time.optional(),
  revokedAt: time.optional(),
  revocationReason: z.string().max(512).optional(),
  rotatedTo: z.string().optional(),
  rotatedFrom: z.string().optional(),
  parent: z.string().optional(),
  limits: keyLimitsSchema.optional(),
});
export type StoredKeyRecord = z.infer<typeof storedSchema>;

export function toStored(r: KeyRecord): StoredKeyRecord {
  return { ...r, publicKey: toBase64Url(r.publicKey) };
}

/** Parses a stored record; throws if malformed or if the kid does not match the public key. */
export function fromStored(value: unknown): KeyRecord {
  const parsed = storedSchema.safeParse(value);
  if (!parsed.success) throw new KeyRegistryError("invalid", "stored key record is malformed");
  const s = parsed.data;
  let publicKey: Uint8Array;
  try {
    publicKey = fromBase64Url(s.publicKey);
  } catch {
    throw new KeyRegistryError("invalid", "stored key record has a bad public key");
  }
  if (publicKey.length !== 32 || ed25519Kid(publicKey) !== s.kid) {
    throw new KeyRegistryError("invalid", "stored key record: kid does not match public key");
  }
  const r: KeyRecord = {
    ...s,
    publicKey,
    ...(s.limits === undefined ? {} : { limits: Object.freeze(s.limits) }),
  };
  // zod keeps absent optionals absent; strip explicit undefineds for stable equality.
  for (const k of Object.keys(r) as (keyof KeyRecord)[]) if (r[k] === undefined) delete r[k];
  return r;
}

export const cloneRecord = (r: KeyRecord): KeyRecord => ({ ...r, publicKey: r.publicKey.slice() });

/** Stable order for list(): oldest first, then by kid. */
export const byCreation = (a: KeyRecord, b: KeyRecord): number =>
  a.createdAt - b.createdAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0);

// ---- audit ----

export type KeyAuditType = "key.created" | "key.rotated" | "key.revoked";

export interface KeyAuditEvent {
  type: KeyAuditType;
  kid: string;
  role: KeyRole;
  subject: string;
  at: number;
  previousKid?: string;
  reason?: string;
  expiresAt?: number;
  limits?: Readonly<KeyLimits>;
}

/** The audit payload for a mutation, from the record that mutation returned. */
export function keyAuditEvent(type: KeyAuditType, r: KeyRecord): KeyAuditEvent {
  const e: KeyAuditEvent = { type, kid: r.kid, role: r.role, subject: r.subject, at: r.createdAt };
  if (type === "key.rotated" && r.rotatedFrom !== undefined) e.previousKid = r.rotatedFrom;
  if (type === "key.revoked") {
    e.at = r.revokedAt ?? r.createdAt;
    if (r.revocationReason !== undefined) e.reason = r.revocationReason;
  }
  if (type !== "key.revoked" && r.expiresAt !== undefined) e.expiresAt = r.expiresAt;
  if (type === "key.created" && r.limits !== undefined) e.limits = r.limits;
  return e;
}
