// Key records: what the registry knows about a public key, and the pure rules that decide whether
// a key may be used. Times are epoch milliseconds.
import { z } from "zod";
import { ed25519Kid } from "../crypto";
import { fromBase64Url, toBase64Url } from "../encoding";
import { type KeyLimits, keyLimitsSchema } from "../limits/resolve";

// gateway: the edge's service key as the Node job gateway knows it (signs envelopes it hands over).
// held: an agent's service-held key (POST /v1/sign); it signs only domain-separated messages and
// can never authenticate a request.
export const KEY_ROLES = [
  "admin",
  "agent",
  "worker",
  "auditor",
  "service",
  "tool",
  "gateway",
  "held",
] as const;
export type KeyRole = (typeof KEY_ROLES)[number];
export const KEY_STATUSES = ["active", "rotated", "revoked"] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

// ---- admin-set attributes (docs/governance.md): groups and code trust ----

/** Bounds on a key's groups: few, short, of a charset safe in logs, policies and Redis keys. */
export const KEY_GROUP_LIMITS = { count: 32, length: 64 } as const;
export const KEY_GROUP_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const keyGroupSchema = z
  .string()
  .min(1)
  .max(KEY_GROUP_LIMITS.length)
  .regex(KEY_GROUP_PATTERN, "a group is A-Z a-z 0-9 _ . - (starting with a letter or digit)");
export const keyGroupsSchema = z
  .array(keyGroupSchema)
  .max(KEY_GROUP_LIMITS.count)
  .refine((g) => new Set(g).size === g.length, "groups must be distinct");
/** The admin-set code trust level of a key, in [0, 1]; 0 (untrusted) unless an admin says more. */
export const keyTrustSchema = z.number().min(0).max(1);

// ---- service-held keys (POST /v1/sign) ----

/** Service-held keys live under their own subject so they never shadow a client's key. */
export const HELD_SUBJECT_PREFIX = "held:";
export const heldSubject = (ownerSubject: string): string =>
  `${HELD_SUBJECT_PREFIX}${ownerSubject}`;

/**
 * Is this a service-held key? Role `held`, or a record made before that role existed: an `agent`
 * key under a `held:` subject. Either way it can never authenticate a request.
 */
export const isHeldKey = (r: Pick<KeyRecord, "role" | "subject">): boolean =>
  r.role === "held" || (r.role === "agent" && r.subject.startsWith(HELD_SUBJECT_PREFIX));

/**
 * What a held key signs is `HELD_SIGNATURE_CONTEXT || message`, never the message alone, so its
 * output can never be an RFC 9421 signature base (which starts with `"`), a job envelope or an
 * audit event (canonical JSON, `{`) or anything else a Sigil key signs.
 */
export const HELD_SIGNATURE_CONTEXT = "sigil.held-signature.v1\n";
const heldContextBytes = new TextEncoder().encode(HELD_SIGNATURE_CONTEXT);

/** The bytes a held key signs for `message`. */
export function heldSignatureInput(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(heldContextBytes.length + message.length);
  out.set(heldContextBytes, 0);
  out.set(message, heldContextBytes.length);
  return out;
}

export interface KeyRecord {
  /**
   * RFC 7638 thumbprint of publicKey: the record is self-certifying, a swapped key changes the kid.
   */
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
  /** Admin-set groups (approver groups, policy attribute agent.groups); [] for older records. */
  groups: string[];
  /** Admin-set code trust level in [0, 1] (risk score, agent.trust); 0 for older records. */
  trust: number;
  /** Quotas an admin set for this key; each overrides its role's (docs/governance.md "Quotas"). */
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
  /** Default []. */
  groups?: readonly string[];
  /** Default 0. */
  trust?: number;
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
  // Only the service makes held keys, and only under a held: subject; no other key may take one.
  if ((input.role === "held") !== input.subject.startsWith(HELD_SUBJECT_PREFIX)) {
    throw new KeyRegistryError(
      "invalid",
      `the ${HELD_SUBJECT_PREFIX} subject prefix is reserved for service-held keys (role held)`,
    );
  }
  // Only an absent field takes the default: a null (say, NaN through JSON) is refused.
  const groups = keyGroupsSchema.safeParse(input.groups === undefined ? [] : input.groups);
  if (!groups.success) {
    throw new KeyRegistryError(
      "invalid",
      `groups: ${groups.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  const trust = keyTrustSchema.safeParse(input.trust === undefined ? 0 : input.trust);
  if (!trust.success) throw new KeyRegistryError("invalid", "trust must be a number in [0, 1]");
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
    groups: [...groups.data],
    trust: trust.data,
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
    // A held key made before role `held` existed (agent, held:…) becomes one on rotation.
    role: isHeldKey(old) ? "held" : old.role,
    subject: old.subject,
    publicKey: newPublicKey,
    createdAt: now,
    groups: old.groups,
    trust: old.trust,
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
  // Absent in records written before keys had groups and trust: they read as [] and 0.
  groups: keyGroupsSchema.optional(),
  trust: keyTrustSchema.optional(),
  limits: keyLimitsSchema.optional(),
});
export type StoredKeyRecord = z.infer<typeof storedSchema>;

export function toStored(r: KeyRecord): StoredKeyRecord {
  return { ...r, publicKey: toBase64Url(r.publicKey), groups: [...r.groups] };
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
    groups: s.groups ?? [],
    trust: s.trust ?? 0,
    ...(s.limits === undefined ? {} : { limits: Object.freeze(s.limits) }),
  };
  // zod keeps absent optionals absent; strip explicit undefineds for stable equality.
  for (const k of Object.keys(r) as (keyof KeyRecord)[]) if (r[k] === undefined) delete r[k];
  return r;
}

export const cloneRecord = (r: KeyRecord): KeyRecord => ({
  ...r,
  publicKey: r.publicKey.slice(),
  groups: [...r.groups],
});

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
  groups: string[];
  trust: number;
  limits?: Readonly<KeyLimits>;
}

/** The audit payload for a mutation, from the record that mutation returned. */
export function keyAuditEvent(type: KeyAuditType, r: KeyRecord): KeyAuditEvent {
  const e: KeyAuditEvent = {
    type,
    kid: r.kid,
    role: r.role,
    subject: r.subject,
    at: r.createdAt,
    groups: [...r.groups],
    trust: r.trust,
  };
  if (type === "key.rotated" && r.rotatedFrom !== undefined) e.previousKid = r.rotatedFrom;
  if (type === "key.revoked") {
    e.at = r.revokedAt ?? r.createdAt;
    if (r.revocationReason !== undefined) e.reason = r.revocationReason;
  }
  if (type !== "key.revoked" && r.expiresAt !== undefined) e.expiresAt = r.expiresAt;
  if (type === "key.created" && r.limits !== undefined) e.limits = r.limits;
  return e;
}
