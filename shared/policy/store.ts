// Storage port for versioned policy documents, and its in-memory adapter.
//
// Names: a document is stored under its name (the store key, e.g. `PUT /v1/policies/:name`);
// the `policy` blocks inside it are the policies that decisions name. Versions of one name
// count 1, 2, 3, ...; every version is kept. `current` points at the active version;
// rollback moves it, delete clears it (history stays, and a later put continues the count).
import { PolicyNameSchema, type PolicyRecord, type PolicyVersionInfo } from "./schema";

export interface NewVersion {
  source: string;
  sha256: string;
  createdAt: string;
}

/** The active documents, read atomically, with a revision that changes on every mutation. */
export interface PolicySnapshot {
  revision: number;
  documents: PolicyRecord[];
}

export interface PolicyStorePort {
  /** Appends a version and makes it current, atomically. Returns the new version number. */
  put(name: string, v: NewVersion): Promise<number>;
  /** The current version, or a given one (also of a deleted name); null if absent. */
  get(name: string, version?: number): Promise<PolicyRecord | null>;
  /** Every stored version of a name, oldest first; empty if the name was never stored. */
  versions(name: string): Promise<PolicyVersionInfo[]>;
  /** Makes an existing version current. False if that version does not exist. */
  setCurrent(name: string, version: number): Promise<boolean>;
  /** Deactivates a name. False if it was not active. */
  delete(name: string): Promise<boolean>;
  /** All current documents and the store revision, as one consistent read. */
  snapshot(): Promise<PolicySnapshot>;
  /** The revision alone (cheap change detection for other nodes). */
  revision(): Promise<number>;
}

interface Entry {
  versions: NewVersion[];
  current: number | null;
}

/** Adapters reject names that are not valid store keys (same rule everywhere). */
export function assertPolicyName(name: string): void {
  if (!PolicyNameSchema.safeParse(name).success) throw new TypeError("invalid policy name");
}

export class MemoryPolicyStore implements PolicyStorePort {
  private readonly entries = new Map<string, Entry>();
  private rev = 0;

  async put(name: string, v: NewVersion): Promise<number> {
    assertPolicyName(name);
    let e = this.entries.get(name);
    if (!e) {
      e = { versions: [], current: null };
      this.entries.set(name, e);
    }
    e.versions.push({ ...v });
    e.current = e.versions.length;
    this.rev++;
    return e.current;
  }

  async get(name: string, version?: number): Promise<PolicyRecord | null> {
    assertPolicyName(name);
    const e = this.entries.get(name);
    if (!e) return null;
    const n = version ?? e.current;
    if (n === null || !Number.isInteger(n) || n < 1 || n > e.versions.length) return null;
    const v = e.versions[n - 1]!;
    return { name, version: n, source: v.source, sha256: v.sha256, createdAt: v.createdAt };
  }

  async versions(name: string): Promise<PolicyVersionInfo[]> {
    assertPolicyName(name);
    const e = this.entries.get(name);
    if (!e) return [];
    return e.versions.map((v, i) => ({
      version: i + 1,
      sha256: v.sha256,
      createdAt: v.createdAt,
      current: e.current === i + 1,
    }));
  }

  async setCurrent(name: string, version: number): Promise<boolean> {
    assertPolicyName(name);
    const e = this.entries.get(name);
    if (!e || !Number.isInteger(version) || version < 1 || version > e.versions.length)
      return false;
    e.current = version;
    this.rev++;
    return true;
  }

  async delete(name: string): Promise<boolean> {
    assertPolicyName(name);
    const e = this.entries.get(name);
    if (!e || e.current === null) return false;
    e.current = null;
    this.rev++;
    return true;
  }

  async snapshot(): Promise<PolicySnapshot> {
    const documents: PolicyRecord[] = [];
    for (const [name, e] of this.entries) {
      if (e.current === null) continue;
      const v = e.versions[e.current - 1]!;
      documents.push({
        name,
        version: e.current,
        source: v.source,
        sha256: v.sha256,
        createdAt: v.createdAt,
      });
    }
    documents.sort((a, b) => (a.name < b.name ? -1 : 1));
    return { revision: this.rev, documents };
  }

  async revision(): Promise<number> {
    return this.rev;
  }
}
