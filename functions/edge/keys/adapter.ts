// KeyRegistry and SecretStore over the KeysObject Durable Object. Records cross the RPC boundary in
// their stored (JSON-safe) form and are re-validated here by fromStored, as the Redis adapter does.
import type { EncryptedKey } from "../../../shared/keys/at-rest";
import type { SecretStore } from "../../../shared/keys/provider";
import {
  fromStored,
  type KeyRecord,
  type KeyRole,
  type RegisterKeyInput,
  type RevokeOptions,
  type RotateOptions,
} from "../../../shared/keys/record";
import type { KeyRegistry } from "../../../shared/keys/registry";
import {
  type ActiveSubject,
  type SubjectKeyStore,
  type SubjectRecord,
  SubjectRecordSchema,
} from "../../../shared/subjects";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { KeysObject } from "./object";

export class DoKeyRegistry implements KeyRegistry {
  constructor(private readonly source: StubSource<KeysObject>) {}

  private get stub() {
    return this.source();
  }

  async register(input: RegisterKeyInput): Promise<KeyRecord> {
    return fromStored(unwrap(await this.stub.register(input)));
  }

  async get(kid: string): Promise<KeyRecord | undefined> {
    const s = unwrap(await this.stub.get(kid));
    return s === null ? undefined : fromStored(s);
  }

  async list(role?: KeyRole): Promise<KeyRecord[]> {
    return unwrap(await this.stub.list(role)).map(fromStored);
  }

  async rotate(
    kid: string,
    newPublicKey: Uint8Array,
    now: number,
    opts?: RotateOptions,
  ): Promise<KeyRecord> {
    return fromStored(unwrap(await this.stub.rotate(kid, newPublicKey, now, opts)));
  }

  async revoke(kid: string, now: number, opts?: RevokeOptions): Promise<KeyRecord> {
    return fromStored(unwrap(await this.stub.revoke(kid, now, opts)));
  }
}

export class DoSecretStore implements SecretStore {
  constructor(private readonly source: StubSource<KeysObject>) {}

  private get stub() {
    return this.source();
  }

  async put(blob: EncryptedKey): Promise<void> {
    unwrap(await this.stub.putSecret(blob));
  }

  async get(kid: string): Promise<EncryptedKey | undefined> {
    return unwrap(await this.stub.getSecret(kid)) ?? undefined;
  }

  async delete(kid: string): Promise<void> {
    unwrap(await this.stub.deleteSecret(kid));
  }

  async list(): Promise<string[]> {
    return unwrap(await this.stub.listSecrets());
  }
}

/** The SubjectKeyStore in the KeysObject (docs/data-subjects.md); results re-validated here. */
export class DoSubjectKeyStore implements SubjectKeyStore {
  constructor(private readonly source: StubSource<KeysObject>) {}

  private get stub() {
    return this.source();
  }

  async createOrGet(subjectHash: string, candidate: ActiveSubject): Promise<SubjectRecord> {
    const r = unwrap(await this.stub.subjectCreateOrGet(subjectHash, candidate));
    return SubjectRecordSchema.parse(r);
  }

  async get(subjectHash: string): Promise<SubjectRecord | undefined> {
    const r = unwrap(await this.stub.subjectGet(subjectHash));
    return r === null ? undefined : SubjectRecordSchema.parse(r);
  }

  async wrappedKey(ref: string): Promise<string | undefined> {
    return unwrap(await this.stub.subjectWrappedKey(ref)) ?? undefined;
  }

  async erase(subjectHash: string, erasedAt: string): Promise<SubjectRecord | undefined> {
    const r = unwrap(await this.stub.subjectErase(subjectHash, erasedAt));
    return r === null ? undefined : SubjectRecordSchema.parse(r);
  }
}
