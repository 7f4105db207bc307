// Personal data in audit events, held per data subject (docs/data-subjects.md, COMPLIANCE.md
// "Personal data and erasure"). An append-only signed chain cannot delete a middle event, so the
// personal fields of an event's details are sealed before the event is hashed and signed:
// AES-256-GCM under a random per-subject key, which is itself wrapped (AES-256-GCM) under a key
// derived from the key hierarchy's secret. Erasure destroys the wrapped key: the events stay and
// still verify (hashes and signatures cover the ciphertext), and read back as "[erased]".
import { z } from "zod";
import type { AuditEvent } from "../audit";
import { Aes256Gcm, CryptoError, hkdfSha256, hmacSha256, randomBytes } from "../crypto";
import { canonicalJson, fromBase64Url, fromUtf8, toBase64Url, toHex, utf8 } from "../encoding";
import {
  type ActiveSubject,
  SubjectError,
  type SubjectKeyStore,
  type SubjectRecord,
  SubjectRefSchema,
} from "./ports";

/** What a personal field of an erased subject reads back as (and is written as after erasure). */
export const ERASED = "[erased]";
/** A sealed field whose key exists but which does not decrypt (tampered storage). */
export const UNREADABLE = "[unreadable]";
/** The details field that names the data subject (COMPLIANCE.md: `details.subject`). */
export const SUBJECT_FIELD = "subject";
/** Prefix of a sealed value: `sigil:pd:v1:<ref>:<base64url(nonce ‖ ciphertext ‖ tag)>`. */
export const SEALED_PREFIX = "sigil:pd:v1:";
const SEALED = /^sigil:pd:v1:([A-Za-z0-9_-]{22}):([A-Za-z0-9_-]+)$/;

export const MAX_SUBJECT_ID = 256;
/** A data subject's id: 1–256 characters of well-formed Unicode, no control characters. */
export const SubjectIdSchema = z
  .string()
  .min(1)
  .max(MAX_SUBJECT_ID)
  .refine((s) => s.isWellFormed(), "subject id must be well-formed Unicode")
  .refine(
    (s) => ![...s].some((ch) => ch.charCodeAt(0) < 0x20 || ch === "\u007f"),
    "subject id must not contain control characters",
  );

const aadFor = (ref: string, field: string) => utf8(`sigil-pd.v1\n${ref}\n${field}`);
const wrapAad = (ref: string) => utf8(`sigil-subject-key.v1\n${ref}`);

export interface SubjectVaultOptions {
  store: SubjectKeyStore;
  /** The key hierarchy's secret (SIGIL_KEY_PASSPHRASE or the generated one): KEK and index key. */
  secret: string | Uint8Array;
  /** Details fields sealed beside `subject` (`[audit] personal_fields`). */
  personalFields?: readonly string[];
  now?: () => number;
}

export interface SubjectExport {
  subject: string;
  state: "active" | "erased" | "unknown";
  /** The subject's events, personal fields decrypted, in index order. */
  events: Pick<
    AuditEvent,
    "index" | "eventId" | "timestamp" | "eventType" | "agentId" | "details" | "eventHash"
  >[];
  /** Where to continue (`from`), or null at the end of the trail. */
  next: number | null;
}

/** What an export scans: the trail's events in windows (AuditService.list). */
export type EventWindows = (
  from: number | undefined,
  limit: number,
) => Promise<{ events: AuditEvent[]; next: number | null }>;

const SCAN_WINDOW = 1000;
/** Unwrapped subject keys kept per process (see #unwrap). */
const KEY_CACHE = 1024;
/** Events per export page (a page's details are bounded by MAX_DETAILS_CHARS each). */
export const EXPORT_PAGE = 100;

export class SubjectVault {
  readonly #store: SubjectKeyStore;
  readonly #kek: Promise<Aes256Gcm>;
  readonly #indexKey: Uint8Array;
  readonly #fields: readonly string[];
  readonly #now: () => number;
  readonly #keys = new Map<string, { wrappedKey: string; key: Aes256Gcm }>();

  constructor(opts: SubjectVaultOptions) {
    const ikm = typeof opts.secret === "string" ? utf8(opts.secret) : opts.secret.slice();
    this.#store = opts.store;
    // Purpose-separated from every other key derived from the secret (functions/node/compose.ts).
    this.#kek = Aes256Gcm.create(hkdfSha256(ikm, utf8("sigil"), utf8("subject-kek.v1"), 32));
    this.#indexKey = hkdfSha256(ikm, utf8("sigil"), utf8("subject-index.v1"), 32);
    this.#fields = [
      SUBJECT_FIELD,
      ...(opts.personalFields ?? []).filter((f) => f !== SUBJECT_FIELD),
    ];
    this.#now = opts.now ?? Date.now;
  }

  /** The keyed hash stores and audit events name a subject by (never the id itself). */
  subjectHash(id: string): string {
    return toHex(hmacSha256(this.#indexKey, utf8(checkId(id))));
  }

  /**
   * Seals the personal fields of `details` under the key of the subject `details.subject` names,
   * creating that key on first use. A subject that was erased gets "[erased]" in those fields:
   * nothing about it is collected again. Details without personal fields are returned as they are.
   */
  async seal(details: Record<string, unknown>): Promise<Record<string, unknown>> {
    const present = this.#fields.filter((f) => Object.hasOwn(details, f));
    if (present.length === 0) return details;
    const id = details[SUBJECT_FIELD];
    if (typeof id !== "string")
      throw new SubjectError(
        "invalid-input",
        `details.${present[0]} is personal data: details.subject must name its data subject (a string)`,
      );
    const rec = await this.#record(id);
    const out: Record<string, unknown> = { ...details };
    if (rec.state === "erased") {
      for (const f of present) out[f] = ERASED;
      return out;
    }
    const key = await this.#unwrap(rec.ref, rec.wrappedKey);
    for (const f of present) {
      if (typeof details[f] === "string" && SEALED.test(details[f] as string))
        throw new SubjectError("invalid-input", `details.${f} must not look like a sealed value`);
      const ct = await key.encrypt(utf8(canonicalJson(details[f])), aadFor(rec.ref, f));
      out[f] = `${SEALED_PREFIX}${rec.ref}:${toBase64Url(ct)}`;
    }
    return out;
  }

  /**
   * The event with its sealed fields decrypted where the subject's key exists, "[erased]" where
   * it does not. The keys are looked up on every call: an erasure in another process counts at once.
   */
  async reveal<E extends Pick<AuditEvent, "details">>(event: E): Promise<E> {
    // Per ref: its key, ERASED (no key any more) or UNREADABLE (a wrapped key that does not unwrap).
    const keys = new Map<string, Aes256Gcm | string>();
    let details: Record<string, unknown> | undefined;
    for (const [f, v] of Object.entries(event.details)) {
      const m = typeof v === "string" ? SEALED.exec(v) : null;
      if (!m) continue;
      const ref = m[1]!;
      if (!keys.has(ref)) {
        const w = await this.#store.wrappedKey(ref);
        keys.set(
          ref,
          w === undefined ? ERASED : await this.#unwrap(ref, w).catch(() => UNREADABLE),
        );
      }
      const key = keys.get(ref)!;
      details ??= { ...event.details };
      details[f] = typeof key === "string" ? key : await open(key, ref, f, m[2]!);
    }
    return details ? { ...event, details } : event;
  }

  /** The subject's state without creating anything. */
  async state(id: string): Promise<SubjectRecord | undefined> {
    return this.#store.get(this.subjectHash(id));
  }

  /**
   * Art. 15: one page of the subject's events (from `from`), decrypted. After erasure nothing links
   * the id to its events any more (the ref went with the key), so an erased subject has none.
   */
  async export(id: string, windows: EventWindows, from?: number): Promise<SubjectExport> {
    const rec = await this.state(id);
    if (!rec || rec.state === "erased")
      return { subject: id, state: rec ? "erased" : "unknown", events: [], next: null };
    const mark = `${SEALED_PREFIX}${rec.ref}:`;
    const events: SubjectExport["events"] = [];
    let cursor: number | undefined = from;
    for (;;) {
      const page = await windows(cursor, SCAN_WINDOW);
      for (const e of page.events) {
        if (!Object.values(e.details).some((v) => typeof v === "string" && v.startsWith(mark)))
          continue;
        if (events.length === EXPORT_PAGE)
          return { subject: id, state: "active", events, next: e.index };
        const r = await this.reveal(e);
        events.push({
          index: r.index,
          eventId: r.eventId,
          timestamp: r.timestamp,
          eventType: r.eventType,
          agentId: r.agentId,
          details: r.details,
          eventHash: r.eventHash,
        });
      }
      if (page.next === null) return { subject: id, state: "active", events, next: null };
      cursor = page.next;
    }
  }

  /** Art. 17: destroys the subject's key. Returns the state it was in before. */
  async erase(id: string): Promise<"active" | "erased" | "unknown"> {
    const before = await this.#store.erase(
      this.subjectHash(id),
      new Date(this.#now()).toISOString(),
    );
    if (before?.state === "active") this.#keys.delete(before.ref);
    return before?.state ?? "unknown";
  }

  async #record(id: string): Promise<SubjectRecord> {
    const h = this.subjectHash(id);
    const had = await this.#store.get(h);
    if (had) return had;
    const key = randomBytes(32);
    try {
      const ref = toBase64Url(randomBytes(16));
      const wrapped = await (await this.#kek).encrypt(key, wrapAad(ref));
      const candidate: ActiveSubject = {
        state: "active",
        ref,
        wrappedKey: toBase64Url(wrapped),
        createdAt: new Date(this.#now()).toISOString(),
      };
      return await this.#store.createOrGet(h, candidate);
    } finally {
      key.fill(0);
    }
  }

  /**
   * Unwrapped keys are kept (non-extractable, at most KEY_CACHE) and used only while the store
   * still returns the same wrapped key for the ref: the store is read on every call, so an erasure
   * anywhere counts at once; the cache saves the unwrap (two AES operations) per event.
   */
  async #unwrap(ref: string, wrappedKey: string): Promise<Aes256Gcm> {
    const hit = this.#keys.get(ref);
    if (hit?.wrappedKey === wrappedKey) return hit.key;
    const key = await this.#unwrapFresh(ref, wrappedKey);
    if (this.#keys.size >= KEY_CACHE) this.#keys.delete(this.#keys.keys().next().value!);
    this.#keys.set(ref, { wrappedKey, key });
    return key;
  }

  async #unwrapFresh(ref: string, wrappedKey: string): Promise<Aes256Gcm> {
    SubjectRefSchema.parse(ref);
    let raw: Uint8Array;
    try {
      raw = await (await this.#kek).decrypt(fromBase64Url(wrappedKey), wrapAad(ref));
    } catch (e) {
      throw new SubjectError(
        "inconsistent",
        `the key of subject ref ${ref} does not unwrap (${e instanceof CryptoError ? e.code : "malformed"})`,
      );
    }
    try {
      return await Aes256Gcm.create(raw);
    } finally {
      raw.fill(0);
    }
  }
}

function checkId(id: string): string {
  const p = SubjectIdSchema.safeParse(id);
  if (!p.success) throw new SubjectError("invalid-input", z.prettifyError(p.error));
  return id;
}

async function open(key: Aes256Gcm, ref: string, field: string, b64: string): Promise<unknown> {
  try {
    return JSON.parse(fromUtf8(await key.decrypt(fromBase64Url(b64), aadFor(ref, field))));
  } catch {
    return UNREADABLE;
  }
}
