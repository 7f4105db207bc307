// AuditService: what the HTTP routes call (append, get, list, verify, checkpoint, proofs, export,
// retention), over any AuditLogPort.
import { z } from "zod";
import { fromBase64, toBase64, toBase64Url } from "../encoding";
import { inSpan } from "../tracing";
import {
  type AuditAppendInput,
  AuditAppendInputSchema,
  type AuditEvent,
  AuditEventSchema,
} from "./event";
import { EXPORT_TYPE, type ExportHeader } from "./export";
import {
  consistencyRanges,
  inclusionRanges,
  type MerkleNode,
  MerkleProofError,
  rangeBlocks,
  resolveRanges,
  rootAt,
  verifyConsistency,
} from "./merkle";
import { assertKeyName, formatCheckpoint, openCheckpoint, signNote } from "./note";
import {
  type AppendOptions,
  type AuditAnchor,
  AuditError,
  type AuditKeyResolver,
  type AuditLogPort,
  type Signer,
  type StoredCheckpoint,
  type VerifyFn,
} from "./ports";
import { type ChainCursor, ChainVerifier, genesisCursor, type VerifyReport } from "./verify";

export interface AuditServiceOptions {
  log: AuditLogPort;
  /** The service key: signs checkpoints (the log's sequencer signs events). */
  signer: Signer;
  verify: VerifyFn;
  keys: AuditKeyResolver;
  /** Checkpoint origin, also the note key name, e.g. "sigil.example.com/audit/default". */
  origin: string;
  now?: () => number;
}

export type AppendResult = Pick<
  AuditEvent,
  "eventId" | "index" | "timestamp" | "previousHash" | "eventHash" | "signature" | "kid"
>;

export interface CheckpointView {
  treeSize: number;
  rootHash: string;
  timestamp: string;
  signature: string;
  kid: string;
  checkpoint: string;
}

export interface InclusionProofView {
  index: number;
  treeSize: number;
  leafHash: string;
  rootHash: string;
  proof: string[];
}

export interface ConsistencyProofView {
  from: number;
  to: number;
  fromRoot: string;
  toRoot: string;
  proof: string[];
}

const WINDOW = 1000;
const MAX_LIST = 1000;

const IndexSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

function checkIndex(v: number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!IndexSchema.safeParse(v).success)
    throw new AuditError("invalid-input", `${what} must be an integer ≥ 0`);
  return v;
}

const viewOf = (cp: StoredCheckpoint): CheckpointView => ({
  treeSize: cp.treeSize,
  rootHash: cp.rootHash,
  timestamp: cp.timestamp,
  signature: cp.signature,
  kid: cp.kid,
  checkpoint: cp.note,
});

export class AuditService {
  constructor(private readonly opts: AuditServiceOptions) {
    assertKeyName(opts.origin);
  }

  get log(): AuditLogPort {
    return this.opts.log;
  }

  /** Whether append can reserve a request nonce with the event (see AppendOptions.nonce). */
  get reservesNonces(): boolean {
    return this.opts.log.reservesNonces === true;
  }

  private readonly readNodes = (refs: readonly { level: number; index: number }[]) =>
    this.opts.log.nodes(refs);

  readonly #observers: ((e: AuditAppendInput) => void)[] = [];

  /** Called with each event once it is durably stored (metrics count them). */
  observe(fn: (e: AuditAppendInput) => void): void {
    this.#observers.push(fn);
  }

  /** Validates and appends; resolves once durably stored. */
  async append(input: unknown, options?: AppendOptions): Promise<AppendResult> {
    const parsed = AuditAppendInputSchema.safeParse(input);
    if (!parsed.success) {
      throw new AuditError("invalid-input", z.prettifyError(parsed.error));
    }
    const e = await inSpan("sigil.audit.append", () => this.opts.log.append(parsed.data, options), {
      attributes: { "sigil.audit.event_type": parsed.data.eventType },
    });
    // The event is stored: an observer's failure must not make the append look failed.
    for (const observe of this.#observers) {
      try {
        observe(parsed.data);
      } catch {
        // counted nowhere; the trail has the event
      }
    }
    return {
      eventId: e.eventId,
      index: e.index,
      timestamp: e.timestamp,
      previousHash: e.previousHash,
      eventHash: e.eventHash,
      signature: e.signature,
      kid: e.kid,
    };
  }

  async get(index: number): Promise<AuditEvent> {
    checkIndex(index, "index");
    const head = await this.opts.log.head();
    if (index < head.start || index >= head.size)
      throw new AuditError("not-found", `no event ${index}`);
    const [rec] = await this.opts.log.read(index, index + 1);
    return parseStored(rec?.json, index);
  }

  async list(from?: number, limit = 100): Promise<{ events: AuditEvent[]; next: number | null }> {
    checkIndex(from, "from");
    checkIndex(limit, "limit");
    const head = await this.opts.log.head();
    const a = Math.max(from ?? head.start, head.start);
    const b = Math.min(a + Math.min(Math.max(limit, 1), MAX_LIST), head.size);
    if (a >= b) return { events: [], next: null };
    const recs = await this.opts.log.read(a, b);
    const events = recs.map((r, i) => parseStored(r?.json, a + i));
    return { events, next: b < head.size ? b : null };
  }

  /** Verifies [from, to) (to exclusive, default: the whole retained chain). */
  async verify(from?: number, to?: number): Promise<VerifyReport> {
    checkIndex(from, "from");
    checkIndex(to, "to");
    const head = await this.opts.log.head();
    const a = Math.max(from ?? head.start, head.start);
    const b = Math.min(to ?? head.size, head.size);
    let cursor: ChainCursor;
    if (a === 0) cursor = genesisCursor();
    else if (a === head.start) {
      const anchor = await this.opts.log.anchor();
      const bad = await this.checkAnchor(anchor, a);
      if (bad)
        return {
          valid: false,
          checked: 0,
          firstInvalid: { index: a, code: "anchor-invalid", reason: bad },
        };
      cursor = { nextIndex: a, headHash: anchor!.eventHash, lastTimestamp: anchor!.timestamp };
    } else {
      // Starting mid-chain: the event before the range is taken as given (it is not in the range).
      const [rec] = await this.opts.log.read(a - 1, a);
      const prev = AuditEventSchema.safeParse(safeJson(rec?.json));
      if (!prev.success) {
        return {
          valid: false,
          checked: 0,
          firstInvalid: {
            index: a - 1,
            code: "malformed",
            reason: "event before the range is unreadable",
          },
        };
      }
      cursor = { nextIndex: a, headHash: prev.data.eventHash, lastTimestamp: prev.data.timestamp };
    }
    const verifier = new ChainVerifier({
      chain: this.opts.log.chain,
      keys: this.opts.keys,
      verify: this.opts.verify,
      start: cursor,
    });
    for (let i = a; i < b; i += WINDOW) {
      const j = Math.min(i + WINDOW, b);
      const refs = Array.from({ length: j - i }, (_, k) => ({ level: 0, index: i + k }));
      const [recs, leaves] = await Promise.all([
        this.opts.log.read(i, j),
        this.opts.log.nodes(refs),
      ]);
      if (await verifier.window(recs, leaves)) break;
    }
    return verifier.report();
  }

  private async checkAnchor(
    anchor: AuditAnchor | undefined,
    start: number,
  ): Promise<string | undefined> {
    if (!anchor || anchor.size !== start) return "retention anchor is missing";
    try {
      const cp = await this.openStored(anchor.checkpoint);
      if (cp.size !== anchor.size) return "anchor checkpoint has the wrong size";
      const root = await rootAt(anchor.size, this.readNodes);
      if (toBase64(root) !== toBase64(cp.rootHash))
        return "anchor checkpoint does not match the tree";
    } catch (e) {
      return `anchor checkpoint invalid: ${e instanceof Error ? e.message : String(e)}`;
    }
    return undefined;
  }

  private async openStored(cp: StoredCheckpoint) {
    const key = await this.opts.keys(cp.kid, cp.timestamp);
    if (!key) throw new AuditError("inconsistent", "checkpoint key unknown");
    return openCheckpoint(
      cp.note,
      [{ name: this.opts.origin, publicKey: key.publicKey }],
      this.opts.verify,
      this.opts.origin,
    );
  }

  private async sign(size: number, root: Uint8Array, timestamp: string): Promise<StoredCheckpoint> {
    const body = formatCheckpoint({ origin: this.opts.origin, size, rootHash: root });
    const { note, signature } = await signNote(body, this.opts.origin, this.opts.signer);
    return {
      treeSize: size,
      rootHash: toBase64(root),
      timestamp,
      note,
      signature: toBase64Url(signature),
      kid: this.opts.signer.kid,
    };
  }

  /** Throws unless (size, root) is consistent with the signed checkpoint `cp`. */
  private async assertConsistent(
    cp: StoredCheckpoint,
    size: number,
    root: Uint8Array,
  ): Promise<void> {
    const [small, big] = cp.treeSize <= size ? [cp.treeSize, size] : [size, cp.treeSize];
    const [smallRoot, bigRoot] =
      cp.treeSize <= size ? [fromBase64(cp.rootHash), root] : [root, fromBase64(cp.rootHash)];
    if (small === 0) return;
    try {
      const proof = await resolveRanges(consistencyRanges(small, big), this.readNodes);
      verifyConsistency(small, big, proof, smallRoot, bigRoot);
    } catch (e) {
      throw new AuditError(
        "inconsistent",
        `refusing to sign: tree at ${size} is inconsistent with the signed checkpoint at ${cp.treeSize}`,
        { cause: e },
      );
    }
  }

  /**
   * The latest signed checkpoint, signing a new one if the log grew. Never signs a checkpoint
   * inconsistent with the last one it signed: the new tree must extend it (checked with a
   * consistency proof from the store), and the stored latest is replaced by compare-and-set.
   */
  async checkpoint(): Promise<CheckpointView> {
    return viewOf(await this.latestSigned());
  }

  private async latestSigned(): Promise<StoredCheckpoint> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const head = await this.opts.log.head();
      const last = await this.opts.log.latestCheckpoint();
      const root = await this.rootOrThrow(head.size);
      if (last) {
        if (last.treeSize > head.size) {
          throw new AuditError(
            "inconsistent",
            "the log is shorter than its latest signed checkpoint",
          );
        }
        if (last.treeSize === head.size) {
          if (last.rootHash !== toBase64(root)) {
            throw new AuditError(
              "inconsistent",
              "the tree no longer matches its latest signed checkpoint",
            );
          }
          return last;
        }
        await this.assertConsistent(last, head.size, root);
      }
      const ts = head.lastTimestamp ?? new Date((this.opts.now ?? Date.now)()).toISOString();
      const cp = await this.sign(head.size, root, ts);
      if (await this.opts.log.saveCheckpoint(last?.treeSize ?? null, cp)) return cp;
    }
    throw new AuditError("conflict", "checkpoint kept moving; try again");
  }

  /** A signed checkpoint at an earlier size, consistent with the latest one. */
  async checkpointAt(size: number): Promise<StoredCheckpoint> {
    checkIndex(size, "size");
    const latest = await this.latestSigned();
    if (size === latest.treeSize) return latest;
    if (size > latest.treeSize)
      throw new AuditError("out-of-range", `tree size ${size} is beyond the log`);
    const root = await this.rootOrThrow(size);
    await this.assertConsistent(latest, size, root);
    const [rec] = size > 0 ? await this.opts.log.read(size - 1, size) : [undefined];
    const ts = rec ? parseStored(rec.json, size - 1).timestamp : latest.timestamp;
    return this.sign(size, root, ts);
  }

  private async rootOrThrow(size: number): Promise<Uint8Array> {
    try {
      return await rootAt(size, this.readNodes);
    } catch (e) {
      throw new AuditError("inconsistent", `cannot compute the tree root at ${size}`, { cause: e });
    }
  }

  async inclusionProof(index: number, treeSize?: number): Promise<InclusionProofView> {
    checkIndex(index, "index");
    checkIndex(treeSize, "treeSize");
    const head = await this.opts.log.head();
    const n = treeSize ?? head.size;
    if (n > head.size || index >= n)
      throw new AuditError("out-of-range", "index must be below treeSize ≤ log size");
    try {
      const [leaf] = await this.opts.log.nodes([{ level: 0, index }]);
      if (!leaf) throw new MerkleProofError(`leaf ${index} is not stored`);
      const [proof, [root]] = await Promise.all([
        resolveRanges(inclusionRanges(index, n), this.readNodes),
        resolveRanges([[0, n]], this.readNodes),
      ]);
      return {
        index,
        treeSize: n,
        leafHash: toBase64(leaf),
        rootHash: toBase64(root!),
        proof: proof.map(toBase64),
      };
    } catch (e) {
      throw new AuditError("not-found", `no inclusion proof: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  async consistencyProof(from: number, to?: number): Promise<ConsistencyProofView> {
    checkIndex(from, "from");
    checkIndex(to, "to");
    const head = await this.opts.log.head();
    const n = to ?? head.size;
    if (from < 1 || from > n || n > head.size) {
      throw new AuditError("out-of-range", "need 0 < from ≤ to ≤ log size");
    }
    try {
      const [proof, [r1, r2]] = await Promise.all([
        from === n
          ? Promise.resolve([])
          : resolveRanges(consistencyRanges(from, n), this.readNodes),
        resolveRanges(
          [
            [0, from],
            [0, n],
          ],
          this.readNodes,
        ),
      ]);
      return {
        from,
        to: n,
        fromRoot: toBase64(r1!),
        toRoot: toBase64(r2!),
        proof: proof.map(toBase64),
      };
    } catch (e) {
      throw new AuditError("not-found", `no consistency proof: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /**
   * NDJSON export of [from, to), newline-terminated lines: a header line (see ExportHeader) then one stored event per line.
   * With the public keys it verifies offline (verifyExport, scripts/audit-verify.ts).
   */
  async *export(from?: number, to?: number): AsyncGenerator<string> {
    checkIndex(from, "from");
    checkIndex(to, "to");
    const head = await this.opts.log.head();
    const a = Math.max(from ?? head.start, head.start);
    const b = Math.min(to ?? head.size, head.size);
    if (a > b) throw new AuditError("out-of-range", "from is after to");
    const checkpoint = b > 0 ? await this.checkpointAt(b) : undefined;
    const anchor = a > 0 && a === head.start ? await this.opts.log.anchor() : undefined;
    let previous: ExportHeader["previous"] = null;
    if (a > 0) {
      if (anchor) previous = { eventHash: anchor.eventHash, timestamp: anchor.timestamp };
      else {
        const [rec] = await this.opts.log.read(a - 1, a);
        const p = parseStored(rec?.json, a - 1);
        previous = { eventHash: p.eventHash, timestamp: p.timestamp };
      }
    }
    const blocks = rangeBlocks(0, a);
    const frontier = a > 0 ? await this.opts.log.nodes(blocks) : [];
    if (frontier.some((h) => h === undefined))
      throw new AuditError("inconsistent", "tree frontier missing");
    const header: ExportHeader = {
      type: EXPORT_TYPE,
      version: 1,
      chain: this.opts.log.chain,
      origin: this.opts.origin,
      from: a,
      to: b,
      previous,
      frontier: frontier.map((h) => toBase64(h!)),
      checkpoint: checkpoint ? viewOf(checkpoint) : null,
      anchorCheckpoint: anchor ? viewOf(anchor.checkpoint) : null,
    };
    yield `${JSON.stringify(header)}\n`;
    for (let i = a; i < b; i += WINDOW) {
      const recs = await this.opts.log.read(i, Math.min(i + WINDOW, b));
      for (const r of recs) if (r) yield `${r.json}\n`;
    }
  }

  /**
   * Retention: archive [start, before) through `archive` (which must have stored it durably when
   * it resolves), then prune it, keeping a signed checkpoint at the cut as the anchor.
   */
  async retain(opts: {
    before: number;
    archive: (lines: AsyncIterable<string>) => Promise<void>;
  }): Promise<{ archived: number; anchor: AuditAnchor }> {
    checkIndex(opts.before, "before");
    const head = await this.opts.log.head();
    const cut = opts.before;
    if (cut <= head.start || cut > head.size) {
      throw new AuditError("out-of-range", `cut must be in (${head.start}, ${head.size}]`);
    }
    const checkpoint = await this.checkpointAt(cut);
    const last = await this.get(cut - 1);
    const anchor: AuditAnchor = {
      size: cut,
      eventHash: last.eventHash,
      timestamp: last.timestamp,
      checkpoint,
    };
    await opts.archive(this.export(head.start, cut));
    await this.opts.log.prune(anchor);
    return { archived: cut - head.start, anchor };
  }

  /** Retention by age: archives and prunes every event older than `cutoff` (ms since epoch). */
  async retainOlderThan(
    cutoff: number,
    archive: (lines: AsyncIterable<string>) => Promise<void>,
  ): Promise<{ archived: number; anchor?: AuditAnchor }> {
    const head = await this.opts.log.head();
    // Timestamps never go back along the chain, so the cut is found by binary search.
    let lo = head.start;
    let hi = head.size;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (Date.parse((await this.get(mid)).timestamp) < cutoff) lo = mid + 1;
      else hi = mid;
    }
    if (lo <= head.start) return { archived: 0 };
    return this.retain({ before: lo, archive });
  }
}

function safeJson(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function parseStored(json: string | undefined, index: number): AuditEvent {
  const p = AuditEventSchema.safeParse(safeJson(json));
  if (!p.success)
    throw new AuditError("inconsistent", `stored event ${index} is missing or malformed`);
  return p.data;
}

/** Retention period in days → cutoff instant (the security model: 2555 days; HIPAA: 6 years). */
export const retentionCutoff = (days: number, now = Date.now()): number => now - days * 86_400_000;

export type { MerkleNode };
