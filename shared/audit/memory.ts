// In-memory audit log (tests, single-process tools). It drives the same sequencer as every other
// adapter; "durable" here means only "in this process's memory".
import type { AuditAppendInput, AuditEvent } from "./event";
import { DEFAULT_CHAIN } from "./event";
import { type NodeRef, nodeKey, prunableNodes } from "./merkle";
import {
  type AppendOptions,
  type AuditAnchor,
  AuditError,
  type AuditLogPort,
  type LogHead,
  nonceUnsupported,
  type Signer,
  type StoredCheckpoint,
  type StoredRecord,
} from "./ports";
import {
  type AdmittedAppend,
  admitAppend,
  asAuditError,
  type ChainState,
  EventIdClock,
  emptyChainState,
  PendingQueue,
  sealBatch,
  settle,
} from "./sequencer";

export interface MemoryAuditLogOptions {
  chain?: string;
  signer: Signer;
  now?: () => number;
  maxBatch?: number;
  maxQueue?: number;
  timeoutMs?: number;
}

export class MemoryAuditLog implements AuditLogPort {
  readonly chain: string;
  private state: ChainState = emptyChainState();
  private start = 0;
  private readonly records = new Map<number, StoredRecord>();
  private readonly nodeMap = new Map<string, Uint8Array>();
  private checkpoint: StoredCheckpoint | undefined;
  private anchorValue: AuditAnchor | undefined;
  private readonly queue: PendingQueue<AdmittedAppend, AuditEvent>;
  private readonly ids = new EventIdClock();
  private running = false;

  constructor(private readonly opts: MemoryAuditLogOptions) {
    this.chain = opts.chain ?? DEFAULT_CHAIN;
    this.queue = new PendingQueue({
      maxQueue: opts.maxQueue ?? 100_000,
      defaultTimeoutMs: opts.timeoutMs ?? 10_000,
      onWork: () => void this.pump(),
    });
  }

  append(input: AuditAppendInput, options?: AppendOptions): Promise<AuditEvent> {
    if (options?.nonce) return Promise.reject(nonceUnsupported());
    let admitted: AdmittedAppend;
    try {
      admitted = admitAppend(input);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.queue.submit(admitted, options?.timeoutMs);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.take(this.opts.maxBatch ?? 256);
        if (batch.length === 0) continue;
        try {
          const sealed = await sealBatch(
            this.state,
            batch.map((b) => b.item),
            {
              chain: this.chain,
              signer: this.opts.signer,
              now: this.opts.now ?? Date.now,
              ids: this.ids,
            },
          );
          sealed.events.forEach((e, i) => {
            this.records.set(e.index, sealed.records[i]!);
          });
          for (const n of sealed.nodes) this.nodeMap.set(nodeKey(n), n.hash);
          this.state = sealed.next;
          settle(batch, sealed.events);
        } catch (e) {
          settle(batch, asAuditError(e, "unavailable", "sealing failed"));
        }
      }
    } finally {
      this.running = false;
    }
  }

  async head(): Promise<LogHead> {
    return {
      size: this.state.size,
      start: this.start,
      headHash: this.state.headHash,
      lastTimestamp: this.state.lastTimestamp,
    };
  }

  async read(from: number, to: number): Promise<(StoredRecord | undefined)[]> {
    const out: (StoredRecord | undefined)[] = [];
    for (let i = from; i < to; i++) out.push(i >= this.start ? this.records.get(i) : undefined);
    return out;
  }

  async nodes(refs: readonly NodeRef[]): Promise<(Uint8Array | undefined)[]> {
    return refs.map((r) => this.nodeMap.get(nodeKey(r)));
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.checkpoint;
  }

  async saveCheckpoint(expectedSize: number | null, cp: StoredCheckpoint): Promise<boolean> {
    if ((this.checkpoint?.treeSize ?? null) !== expectedSize) return false;
    this.checkpoint = cp;
    return true;
  }

  async anchor(): Promise<AuditAnchor | undefined> {
    return this.anchorValue;
  }

  async prune(anchor: AuditAnchor): Promise<void> {
    if (anchor.size <= this.start || anchor.size > this.state.size) {
      throw new AuditError("out-of-range", `cannot prune to ${anchor.size}`);
    }
    const old = this.start;
    this.anchorValue = anchor;
    this.start = anchor.size;
    for (let i = old; i < anchor.size; i++) this.records.delete(i);
    for (const r of prunableNodes(old, anchor.size)) this.nodeMap.delete(nodeKey(r));
  }

  async close(): Promise<void> {
    this.queue.close(new AuditError("closed", "audit log is closed"));
  }

  /** Test hook: rewrite (or drop) the stored record at an index, as an attacker with the store could. */
  tamper(index: number, fn: (r: StoredRecord | undefined) => StoredRecord | undefined): void {
    const next = fn(this.records.get(index));
    if (next) this.records.set(index, next);
    else this.records.delete(index);
  }

  /** Test hook: rewrite a stored Merkle node. */
  tamperNode(ref: NodeRef, hash: Uint8Array): void {
    this.nodeMap.set(nodeKey(ref), hash);
  }
}
