// PinStore over PinsObject (one object per domain). Records are encoded (schema-checked) before they
// leave and decoded (re-validated) when they come back: a corrupt record is an error, never "no pin".
import {
  decodePinRecord,
  encodePinRecord,
  type PinRecord,
  type PinStore,
  pinField,
} from "../../../shared/schemapin/pins";
import { unwrap } from "../rpc";
import { type DurableObjectNamespace, stubFor } from "../runtime";
import type { PinsObject } from "./object";

export class DoPinStore implements PinStore {
  constructor(
    private readonly ns: DurableObjectNamespace<PinsObject>,
    /** Namespaces the object names (tests use a fresh one per instance). */
    private readonly prefix = "pins:",
  ) {}

  #stub(domain: string) {
    return stubFor(this.ns, `${this.prefix}${domain}`);
  }

  async get(domain: string, toolId: string | null): Promise<PinRecord | null> {
    const s = unwrap(await this.#stub(domain).get(pinField(toolId)));
    return s === null ? null : decodePinRecord(s);
  }

  async list(domain: string): Promise<PinRecord[]> {
    return unwrap(await this.#stub(domain).list()).map(([, v]) => decodePinRecord(v));
  }

  async compareAndSwap(
    domain: string,
    toolId: string | null,
    expected: PinRecord | null,
    next: PinRecord | null,
  ): Promise<boolean> {
    const nextStr = next === null ? null : encodePinRecord(next);
    const expectedStr = expected === null ? null : encodePinRecord(expected);
    return unwrap(await this.#stub(domain).compareAndSwap(pinField(toolId), expectedStr, nextStr));
  }

  async delete(domain: string, toolId: string | null): Promise<boolean> {
    return unwrap(await this.#stub(domain).delete(pinField(toolId)));
  }
}
