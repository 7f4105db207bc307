// PolicyStorePort over PolicyObject. Names are checked here too, so a bad name fails before any I/O
// with the same TypeError as the other adapters.
import {
  assertPolicyName,
  type NewVersion,
  type PolicyRecord,
  type PolicySnapshot,
  type PolicyStorePort,
  type PolicyVersionInfo,
} from "../../../shared/policy";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { PolicyObject } from "./object";

export class DoPolicyStore implements PolicyStorePort {
  constructor(private readonly source: StubSource<PolicyObject>) {}

  private get stub() {
    return this.source();
  }

  async put(name: string, v: NewVersion): Promise<number> {
    assertPolicyName(name);
    return unwrap(
      await this.stub.put(name, { source: v.source, sha256: v.sha256, createdAt: v.createdAt }),
    );
  }

  async get(name: string, version?: number): Promise<PolicyRecord | null> {
    assertPolicyName(name);
    return unwrap(await this.stub.get(name, version));
  }

  async versions(name: string): Promise<PolicyVersionInfo[]> {
    assertPolicyName(name);
    return unwrap(await this.stub.versions(name));
  }

  async setCurrent(name: string, version: number): Promise<boolean> {
    assertPolicyName(name);
    return unwrap(await this.stub.setCurrent(name, version));
  }

  async delete(name: string): Promise<boolean> {
    assertPolicyName(name);
    return unwrap(await this.stub.delete(name));
  }

  async snapshot(): Promise<PolicySnapshot> {
    return unwrap(await this.stub.snapshot());
  }

  async revision(): Promise<number> {
    return unwrap(await this.stub.revision());
  }
}
