// AuditLogPort over AuditObject (one object per chain). The object sequences, signs and stores; this
// side only forwards. If the RPC itself fails (object reset, network), the append may or may not
// have been stored: that is reported as "outcome-unknown", never as success or as "not appended".
import {
  type AppendOptions,
  type AuditAnchor,
  type AuditAppendInput,
  AuditError,
  type AuditEvent,
  type AuditLogPort,
  ChainIdSchema,
  type LogHead,
  type NodeRef,
  nonceUnsupported,
  type StoredCheckpoint,
  type StoredRecord,
} from "../../../shared/audit";
import { type Result, unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { AuditObject } from "./object";

export interface DoAuditLogOptions {
  object: StubSource<AuditObject>;
  chain: string;
  /** kid of the service key the object signs with. */
  kid: string;
}

async function call<T>(p: Promise<Result<T>>, what: string, unknownOutcome = false): Promise<T> {
  let r: Result<T>;
  try {
    r = await p;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new AuditError(
      unknownOutcome ? "outcome-unknown" : "unavailable",
      unknownOutcome
        ? `audit object did not confirm the append; it may or may not be stored (${msg})`
        : `audit object unavailable during ${what}: ${msg}`,
      { cause: e },
    );
  }
  return unwrap(r);
}

export class DoAuditLog implements AuditLogPort {
  readonly chain: string;
  readonly #source: StubSource<AuditObject>;
  readonly #kid: string;

  constructor(opts: DoAuditLogOptions) {
    this.chain = ChainIdSchema.parse(opts.chain);
    this.#source = opts.object;
    this.#kid = opts.kid;
  }

  append(input: AuditAppendInput, options?: AppendOptions): Promise<AuditEvent> {
    if (options?.nonce) return Promise.reject(nonceUnsupported());
    const opts = {
      chain: this.chain,
      kid: this.#kid,
      ...(options?.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
    };
    return call(this.#source().append(input, opts), "append", true);
  }

  head(): Promise<LogHead> {
    return call(this.#source().head(), "head");
  }

  read(from: number, to: number): Promise<(StoredRecord | undefined)[]> {
    return call(this.#source().read(from, to), "read");
  }

  nodes(refs: readonly NodeRef[]): Promise<(Uint8Array | undefined)[]> {
    if (refs.length === 0) return Promise.resolve([]);
    return call(
      this.#source().nodes(refs.map((r) => ({ level: r.level, index: r.index }))),
      "nodes",
    );
  }

  latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return call(this.#source().latestCheckpoint(), "latestCheckpoint");
  }

  saveCheckpoint(expectedSize: number | null, checkpoint: StoredCheckpoint): Promise<boolean> {
    return call(this.#source().saveCheckpoint(expectedSize, checkpoint), "saveCheckpoint");
  }

  anchor(): Promise<AuditAnchor | undefined> {
    return call(this.#source().anchor(), "anchor");
  }

  async prune(anchor: AuditAnchor): Promise<void> {
    await call(this.#source().prune(anchor), "prune");
  }

  /** Nothing to release: the object outlives this isolate. */
  async close(): Promise<void> {}
}
