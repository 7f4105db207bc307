// ReplayCache over ReplayObject: one Durable Object per keyid.
import type { ReplayCache } from "../../../shared/httpsig/ports";
import { unwrap } from "../rpc";
import { type DurableObjectNamespace, stubFor } from "../runtime";
import type { ReplayObject } from "./object";

export class DoReplayCache implements ReplayCache {
  constructor(
    private readonly ns: DurableObjectNamespace<ReplayObject>,
    /** Namespaces the object names (tests use a fresh one per instance). */
    private readonly prefix = "replay:",
  ) {}

  async checkAndStore(keyid: string, nonce: string, ttlSeconds: number): Promise<boolean> {
    if (!(ttlSeconds > 0) || !Number.isFinite(ttlSeconds))
      throw new RangeError("ttlSeconds must be > 0");
    const stub = stubFor(this.ns, `${this.prefix}${keyid}`);
    return unwrap(await stub.checkAndStore(keyid, nonce, ttlSeconds * 1000));
  }
}
