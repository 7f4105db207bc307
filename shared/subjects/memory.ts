// SubjectKeyStore in this process's memory (tests, single-process use).
import {
  type ActiveSubject,
  checkActive,
  checkHash,
  checkInstant,
  checkRef,
  parseRecord,
  type SubjectKeyStore,
  type SubjectRecord,
} from "./ports";

export class MemorySubjectKeyStore implements SubjectKeyStore {
  readonly #records = new Map<string, string>();
  readonly #keys = new Map<string, string>();

  async createOrGet(subjectHash: string, candidate: ActiveSubject): Promise<SubjectRecord> {
    checkHash(subjectHash);
    const c = checkActive(candidate);
    const had = parseRecord(this.#records.get(subjectHash));
    if (had) return had;
    this.#records.set(subjectHash, JSON.stringify(c));
    this.#keys.set(c.ref, c.wrappedKey);
    return c;
  }

  async get(subjectHash: string): Promise<SubjectRecord | undefined> {
    return parseRecord(this.#records.get(checkHash(subjectHash)));
  }

  async wrappedKey(ref: string): Promise<string | undefined> {
    return this.#keys.get(checkRef(ref));
  }

  async erase(subjectHash: string, erasedAt: string): Promise<SubjectRecord | undefined> {
    checkHash(subjectHash);
    checkInstant(erasedAt);
    const had = parseRecord(this.#records.get(subjectHash));
    if (had?.state === "erased") return had;
    if (had) this.#keys.delete(had.ref);
    this.#records.set(subjectHash, JSON.stringify({ state: "erased", erasedAt }));
    return had;
  }
}
