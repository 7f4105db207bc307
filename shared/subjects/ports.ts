// The SubjectKeyStore port (docs/data-subjects.md): one record per data subject, found by a keyed
// hash of its id, holding either its data key (wrapped by the key hierarchy) or, once erased, only
// a tombstone. Adapters: memory (here), Redis (functions/node/stores/subjects-redis.ts) and the
// KeysObject Durable Object (functions/edge/keys); one contract suite (test/contract/subjects).
import { z } from "zod";

/** HMAC-SHA256 of the subject id under the index key, hex: stores never see the id itself. */
export const SubjectHashSchema = z.string().regex(/^[0-9a-f]{64}$/, "subject hash must be hex");
/** A random 128-bit reference (base64url) that names the subject inside sealed fields. */
export const SubjectRefSchema = z.string().regex(/^[A-Za-z0-9_-]{22}$/, "invalid subject ref");
/** nonce(12) ‖ AES-256-GCM(32-byte key) ‖ tag(16), base64url: 60 bytes → 80 characters. */
export const WrappedKeySchema = z.string().regex(/^[A-Za-z0-9_-]{80}$/, "invalid wrapped key");
const Instant = z.iso.datetime();

export const ActiveSubjectSchema = z.strictObject({
  state: z.literal("active"),
  ref: SubjectRefSchema,
  wrappedKey: WrappedKeySchema,
  createdAt: Instant,
});
export const ErasedSubjectSchema = z.strictObject({
  state: z.literal("erased"),
  erasedAt: Instant,
});
export const SubjectRecordSchema = z.discriminatedUnion("state", [
  ActiveSubjectSchema,
  ErasedSubjectSchema,
]);
export type ActiveSubject = z.infer<typeof ActiveSubjectSchema>;
export type ErasedSubject = z.infer<typeof ErasedSubjectSchema>;
export type SubjectRecord = z.infer<typeof SubjectRecordSchema>;

export interface SubjectKeyStore {
  /**
   * The subject's record, storing `candidate` first if there is none. Atomic: of concurrent
   * creates for one subject exactly one key is stored and every caller gets that one; an erased
   * subject stays erased (its tombstone is returned, no key is made).
   */
  createOrGet(subjectHash: string, candidate: ActiveSubject): Promise<SubjectRecord>;
  get(subjectHash: string): Promise<SubjectRecord | undefined>;
  /** An active subject's wrapped key by its ref; undefined once erased or never made. */
  wrappedKey(ref: string): Promise<string | undefined>;
  /**
   * Destroys the subject's key (crypto-shredding) and leaves a tombstone, also for a subject never
   * seen (so nothing about it is collected again). Atomic with createOrGet. Returns the record
   * as it was before; an erased subject keeps its first tombstone.
   */
  erase(subjectHash: string, erasedAt: string): Promise<SubjectRecord | undefined>;
}

export type SubjectErrorCode = "invalid-input" | "inconsistent";

export class SubjectError extends Error {
  readonly code: SubjectErrorCode;
  constructor(code: SubjectErrorCode, message: string) {
    super(message);
    this.name = "SubjectError";
    this.code = code;
  }
}

/** What every adapter checks before it stores anything (storage is not trusted to be either). */
export function checkHash(subjectHash: string): string {
  if (!SubjectHashSchema.safeParse(subjectHash).success)
    throw new SubjectError("invalid-input", "subject hash must be 64 lowercase hex digits");
  return subjectHash;
}

export function checkRef(ref: string): string {
  if (!SubjectRefSchema.safeParse(ref).success)
    throw new SubjectError("invalid-input", "invalid subject ref");
  return ref;
}

export function checkActive(r: ActiveSubject): ActiveSubject {
  const p = ActiveSubjectSchema.safeParse(r);
  if (!p.success) throw new SubjectError("invalid-input", "invalid subject record");
  return p.data;
}

export function checkInstant(at: string): string {
  if (!Instant.safeParse(at).success)
    throw new SubjectError("invalid-input", "erasedAt must be an RFC 3339 instant");
  return at;
}

/** A stored record read back: anything else is tampering or another writer's data. */
export function parseRecord(json: string | null | undefined): SubjectRecord | undefined {
  if (json === null || json === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new SubjectError("inconsistent", "stored subject record is not JSON");
  }
  const p = SubjectRecordSchema.safeParse(v);
  if (!p.success) throw new SubjectError("inconsistent", "stored subject record is malformed");
  return p.data;
}
