// The sequencer's pure parts, driven by every adapter (memory, Redis leader, Durable Object):
// a queue of pending appends with deadlines, and sealBatch, which assigns indexes, timestamps and
// ids, chains the hashes, signs the batch in parallel and extends the Merkle tree. Storing the
// sealed batch atomically (and fencing it) is the adapter's job.
import { v7 as uuidv7 } from "uuid";
import { idRandom16 } from "../crypto";
import { canonicalJson, toBase64Url } from "../encoding";
import {
  type AuditAppendInput,
  type AuditEvent,
  computeEventHash,
  type EventParts,
  eventJson,
  eventParts,
  fieldSums,
  GENESIS_HASH,
  signingBytes,
} from "./event";
import { CompactRange, hashLeaf, type MerkleNode } from "./merkle";
import { AuditError, type Signer, type StoredRecord } from "./ports";

/** Where the chain ends, as the sequencer needs it. */
export interface ChainState {
  size: number;
  headHash: string;
  lastTimestamp: string | null;
  range: CompactRange;
}

export const emptyChainState = (): ChainState => ({
  size: 0,
  headHash: GENESIS_HASH,
  lastTimestamp: null,
  range: CompactRange.empty(),
});

/** UUIDv7 ids whose millisecond field equals the event timestamp, monotonic per sequencer. */
export class EventIdClock {
  private msecs = -1;
  private seq = 0;

  next(atLeastMs: number): { id: string; msecs: number } {
    const rnds = idRandom16();
    if (atLeastMs > this.msecs) {
      this.msecs = atLeastMs;
      // A random 31-bit start leaves room to count up within one millisecond (RFC 9562 §6.2).
      this.seq = ((rnds[6]! & 0x7f) << 24) | (rnds[7]! << 16) | (rnds[8]! << 8) | rnds[9]!;
    } else {
      this.seq = (this.seq + 1) | 0;
      if (this.seq === 0) this.msecs++;
    }
    return { id: uuidv7({ msecs: this.msecs, seq: this.seq, random: rnds }), msecs: this.msecs };
  }
}

export interface SealContext {
  chain: string;
  signer: Signer;
  now: () => number;
  ids: EventIdClock;
}

export interface SealedBatch {
  events: AuditEvent[];
  records: StoredRecord[];
  /** Every Merkle node the batch completes, leaves included. */
  nodes: MerkleNode[];
  next: ChainState;
}

/**
 * An append checked on arrival, before it may join a batch: its strings are well-formed Unicode and
 * its details are already in canonical form, so sealing it cannot fail on its content.
 */
export interface AdmittedAppend {
  readonly input: AuditAppendInput;
  /** RFC 8785 canonical JSON of input.details. */
  readonly details: string;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/**
 * Admits one append: every adapter calls this in `append`, so an input canonicalisation would
 * refuse (a lone surrogate in any key or value, a value JSON cannot hold) is rejected alone with
 * `invalid-input` instead of failing the batch it would have been sealed with. Canonicalising here
 * replaces doing it while sealing, so it costs nothing extra.
 */
export function admitAppend(input: AuditAppendInput): AdmittedAppend {
  const { eventType, agentId, details } = input;
  if (typeof eventType !== "string" || !eventType.isWellFormed()) {
    throw new AuditError("invalid-input", "eventType must be a well-formed string");
  }
  if (agentId !== undefined && (typeof agentId !== "string" || !agentId.isWellFormed())) {
    throw new AuditError("invalid-input", "agentId must be a well-formed string");
  }
  if (!isPlainObject(details)) throw new AuditError("invalid-input", "details must be an object");
  try {
    return { input, details: canonicalJson(details) };
  } catch (e) {
    throw new AuditError(
      "invalid-input",
      `details have no canonical JSON form (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/** Where the chain's hash link and clock stand (the Merkle range follows once signatures land). */
export type ChainLink = Pick<ChainState, "size" | "headHash" | "lastTimestamp">;

/**
 * A batch whose indexes, timestamps, ids and hash chain are fixed and whose signatures are being
 * computed. `next` is where the chain link stands after it, so the following batch can be prepared
 * while these signatures are still in flight.
 */
export interface PreparedBatch {
  bodies: { event: Omit<AuditEvent, "signature" | "kid">; parts: EventParts }[];
  signatures: Promise<Uint8Array[]>;
  kid: string;
  next: ChainLink;
}

/** The synchronous half of sealing: assigns indexes, ids and timestamps, chains, starts signing. */
export function prepareBatch(
  link: ChainLink,
  inputs: readonly AdmittedAppend[],
  ctx: SealContext,
): PreparedBatch {
  let clock = Math.max(ctx.now(), link.lastTimestamp ? Date.parse(link.lastTimestamp) : 0);
  let previousHash = link.headHash;
  const bodies: PreparedBatch["bodies"] = [];
  for (let i = 0; i < inputs.length; i++) {
    const { input, details } = inputs[i]!;
    const { id, msecs } = ctx.ids.next(clock);
    clock = msecs;
    const body = {
      chain: ctx.chain,
      index: link.size + i,
      eventId: id,
      timestamp: new Date(msecs).toISOString(),
      agentId: input.agentId ?? "system",
      eventType: input.eventType,
      previousHash,
    };
    // Every member left is a string or a safe integer, whose JSON cannot fail.
    const parts = eventParts(body);
    parts.details = details;
    const eventHash = computeEventHash(parts);
    parts.eventHash = `"${eventHash}"`; // hex: its canonical JSON is itself, quoted
    previousHash = eventHash;
    bodies.push({
      event: { ...body, details: input.details as AuditEvent["details"], eventHash },
      parts,
    });
  }
  // Hashes are fixed, so the signatures are independent: sign them all at once.
  const signatures = Promise.all(bodies.map((b) => ctx.signer.sign(signingBytes(b.parts))));
  // A rejection is observed by finishBatch; do not let it surface as unhandled before then.
  signatures.catch(() => undefined);
  const last = bodies[bodies.length - 1]?.event;
  return {
    bodies,
    signatures,
    kid: ctx.signer.kid,
    next: last
      ? { size: last.index + 1, headHash: last.eventHash, lastTimestamp: last.timestamp }
      : { size: link.size, headHash: link.headHash, lastTimestamp: link.lastTimestamp },
  };
}

/** The second half: waits for the signatures and extends `range` (not modified) in order. */
export async function finishBatch(p: PreparedBatch, range: CompactRange): Promise<SealedBatch> {
  const sigs = await p.signatures;
  const next = range.clone();
  const nodes: MerkleNode[] = [];
  const events: AuditEvent[] = [];
  const records: StoredRecord[] = [];
  const kidJson = canonicalJson(p.kid);
  for (let i = 0; i < p.bodies.length; i++) {
    const sig = sigs[i]!;
    if (sig.length !== 64)
      throw new AuditError("unavailable", "signer returned a malformed signature");
    const { event, parts } = p.bodies[i]!;
    const signature = toBase64Url(sig);
    parts.kid = kidJson;
    parts.signature = `"${signature}"`; // base64url: its canonical JSON is itself, quoted
    const json = eventJson(parts);
    next.append(hashLeaf(json), nodes);
    events.push({ ...event, kid: p.kid, signature });
    records.push({ json, sums: fieldSums(parts) });
  }
  return { events, records, nodes, next: { ...p.next, range: next } };
}

/** Seals inputs onto `state` (which it does not modify). */
export async function sealBatch(
  state: ChainState,
  inputs: readonly AdmittedAppend[],
  ctx: SealContext,
): Promise<SealedBatch> {
  return finishBatch(prepareBatch(state, inputs, ctx), state.range);
}

export interface Pending<I, O> {
  item: I;
  /** When it was submitted (the queue's clock): how long it waited is the sequencer's lag. */
  submittedAt: number;
  deadline: number;
  resolve: (o: O) => void;
  reject: (e: Error) => void;
}

/**
 * Appends waiting for the sequencer. An entry still queued at its deadline is rejected with a
 * definite "not appended"; once taken into a batch, the adapter owns its outcome.
 */
export class PendingQueue<I, O> {
  private entries: Pending<I, O>[] = [];
  private sweeper: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly opts: {
      maxQueue: number;
      defaultTimeoutMs: number;
      onWork: () => void;
      now?: () => number;
    },
  ) {}

  get length(): number {
    return this.entries.length;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  submit(item: I, timeoutMs?: number): Promise<O> {
    if (this.closed) return Promise.reject(new AuditError("closed", "audit log is closed"));
    if (this.entries.length >= this.opts.maxQueue) {
      return Promise.reject(new AuditError("unavailable", "audit append queue is full"));
    }
    return new Promise<O>((resolve, reject) => {
      const now = this.now();
      this.entries.push({
        item,
        submittedAt: now,
        deadline: now + (timeoutMs ?? this.opts.defaultTimeoutMs),
        resolve,
        reject,
      });
      this.arm();
      this.opts.onWork();
    });
  }

  /** Removes up to `max` live entries, rejecting expired ones on the way. */
  take(max: number): Pending<I, O>[] {
    this.expire();
    const out = this.entries.splice(0, max);
    if (this.entries.length === 0) this.disarm();
    return out;
  }

  /** Puts entries back at the front (their batch was not stored, e.g. fenced off). */
  requeue(entries: Pending<I, O>[]): void {
    if (this.closed) {
      for (const e of entries)
        e.reject(new AuditError("closed", "audit log closed before the append was stored"));
      return;
    }
    this.entries.unshift(...entries);
    this.expire();
    if (this.entries.length > 0) this.arm();
  }

  expire(): void {
    const t = this.now();
    if (!this.entries.some((e) => e.deadline <= t)) return;
    const keep: Pending<I, O>[] = [];
    for (const e of this.entries) {
      if (e.deadline <= t) {
        e.reject(
          new AuditError(
            "timeout",
            "append timed out before it was sequenced; it was not appended",
          ),
        );
      } else keep.push(e);
    }
    this.entries = keep;
    if (keep.length === 0) this.disarm();
  }

  close(reason: Error): void {
    this.closed = true;
    for (const e of this.entries.splice(0)) e.reject(reason);
    this.disarm();
  }

  private arm(): void {
    if (this.sweeper !== undefined) return;
    this.sweeper = setInterval(() => this.expire(), 20);
    const t = this.sweeper as unknown as { unref?: () => void };
    t.unref?.();
  }

  private disarm(): void {
    if (this.sweeper === undefined) return;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

/** Settles a batch's entries from its outcome. */
export function settle<I, O>(entries: Pending<I, O>[], results: O[] | Error): void {
  entries.forEach((e, i) => {
    if (results instanceof Error) e.reject(results);
    else e.resolve(results[i]!);
  });
}

/** Wraps any failure as an AuditError, keeping AuditErrors as they are. */
export function asAuditError(e: unknown, code: AuditError["code"], what: string): AuditError {
  if (e instanceof AuditError) return e;
  return new AuditError(code, `${what}: ${e instanceof Error ? e.message : String(e)}`, {
    cause: e,
  });
}
