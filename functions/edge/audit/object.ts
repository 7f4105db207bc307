// AuditObject: one Durable Object per audit chain, and that object IS the chain's sequencer
// (docs/audit.md "Appending"). A DO instance is unique worldwide and runs one event at a time, so
// there is no lock or fencing: appends from every Worker isolate queue here (the shared
// PendingQueue), are sealed in batches by the shared sealBatch (indexes, timestamps, ids, hash
// chain, parallel signatures, Merkle nodes) and each batch is written with one transactionSync.
// While a batch is being signed, new appends keep queueing, so batches grow with load.
//
// Durability: an append resolves only after its batch's transaction committed to the object's
// SQLite storage; workerd's output gate then holds the RPC reply until that write is durable (in
// production: confirmed by the storage replicas). A failed write rolls back the whole batch,
// rejects its appends ("unavailable": definitely not appended) and the head is re-read from
// storage.
//
// Signing: the object holds the service signer itself. The Worker names the service key (kid) with
// each append; the object checks in the KeysObject that it is an active "service" key and decrypts
// it with the same secret and SecretStore the Worker uses, so no private key crosses an RPC call.
import {
  type AdmittedAppend,
  type AuditAnchor,
  AuditAnchorSchema,
  AuditAppendInputSchema,
  AuditError,
  type AuditEvent,
  admitAppend,
  asAuditError,
  ChainIdSchema,
  type ChainState,
  CompactRange,
  EventIdClock,
  emptyChainState,
  HASH_SIZE,
  type LogHead,
  type NodeRef,
  nodeKey,
  type Pending,
  PendingQueue,
  prunableNodes,
  type SealedBatch,
  type Signer,
  type StoredCheckpoint,
  StoredCheckpointSchema,
  type StoredRecord,
  sealBatch,
  settle,
} from "../../../shared/audit";
import { fromHex, toHex } from "../../../shared/encoding";
import { SoftwareKeyProvider } from "../../../shared/keys/provider";
import { fromStored, usableForNewRequest } from "../../../shared/keys/record";
import { KEYS_OBJECT } from "../constants";
import { DoSecretStore } from "../keys/adapter";
import type { KeysObject } from "../keys/object";
import { edgeKeySecret } from "../keys/secret";
import { capture, type Result, unwrap } from "../rpc";
import { type DurableObjectNamespace, type DurableObjectState, stubSource } from "../runtime";
import { SqlObject } from "../sql-object";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (idx INTEGER PRIMARY KEY, json TEXT NOT NULL, sums TEXT, event_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (k TEXT PRIMARY KEY, h BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);`;

const MAX_BATCH = 512;
const MAX_READ = 10_000;
/** How long a checked service key is trusted before the registry is asked again. */
const SIGNER_RECHECK_MS = 60_000;

export interface AuditAppendRpcOptions {
  chain: string;
  /** The service key to sign with (must be an active role "service" key). */
  kid: string;
  timeoutMs?: number;
}

interface Item {
  input: AdmittedAppend;
  signer: Signer;
}
type Entry = Pending<Item, AuditEvent>;

interface AuditObjectEnv {
  SIGIL_KEYS: DurableObjectNamespace<KeysObject>;
  [key: string]: unknown;
}

export class AuditObject extends SqlObject<AuditObjectEnv> {
  #state: ChainState = emptyChainState();
  #start = 0;
  #chain: string | undefined;
  readonly #ids = new EventIdClock();
  readonly #queue: PendingQueue<Item, AuditEvent>;
  readonly #signers = new Map<string, { signer: Promise<Signer>; checkedAt: number }>();
  #running = false;

  constructor(ctx: DurableObjectState, env: AuditObjectEnv) {
    super(ctx, env, SCHEMA);
    this.#queue = new PendingQueue<Item, AuditEvent>({
      maxQueue: 100_000,
      defaultTimeoutMs: 10_000,
      onWork: () => void this.#pump(),
    });
    this.#load();
  }

  // ---------------------------------------------------------------- appends

  append(input: unknown, opts: AuditAppendRpcOptions): Promise<Result<AuditEvent>> {
    return capture(async () => {
      const parsed = AuditAppendInputSchema.safeParse(input);
      if (!parsed.success) throw new AuditError("invalid-input", parsed.error.message);
      // Refused here, alone: a bad input inside a batch would fail every append sealed with it.
      const admitted = admitAppend(parsed.data);
      this.#bindChain(opts.chain);
      const signer = await this.#signer(opts.kid);
      return this.#queue.submit({ input: admitted, signer }, opts.timeoutMs);
    });
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.take(MAX_BATCH);
        if (batch.length > 0) await this.#commit(batch);
      }
    } finally {
      this.#running = false;
    }
  }

  async #commit(batch: Entry[]): Promise<void> {
    const chain = this.#chain;
    try {
      if (chain === undefined) throw new AuditError("unavailable", "audit chain is not bound");
      // One sealBatch per run of appends signed by the same key (a rotation can split a batch).
      const sealed: SealedBatch[] = [];
      let state = this.#state;
      for (let i = 0; i < batch.length; ) {
        let j = i + 1;
        while (j < batch.length && batch[j]!.item.signer === batch[i]!.item.signer) j++;
        const s = await sealBatch(
          state,
          batch.slice(i, j).map((e) => e.item.input),
          { chain, signer: batch[i]!.item.signer, now: Date.now, ids: this.#ids },
        );
        sealed.push(s);
        state = s.next;
        i = j;
      }
      this.ctx.storage.transactionSync(() => {
        for (const s of sealed) {
          s.events.forEach((e, k) => {
            const r = s.records[k]!;
            this.sql.exec(
              "INSERT INTO events (idx, json, sums, event_id) VALUES (?, ?, ?, ?)",
              e.index,
              r.json,
              r.sums ?? null,
              e.eventId,
            );
          });
          for (const n of s.nodes)
            this.sql.exec("INSERT OR REPLACE INTO nodes (k, h) VALUES (?, ?)", nodeKey(n), n.hash);
        }
        this.#putMeta("size", String(state.size));
        this.#putMeta("hash", state.headHash);
        this.#putMeta("ts", state.lastTimestamp ?? "");
        this.#putMeta("frontier", state.range.frontier.map(toHex).join(""));
      });
      this.#state = state;
      settle(
        batch,
        sealed.flatMap((s) => s.events),
      );
    } catch (e) {
      settle(batch, asAuditError(e, "unavailable", "audit append failed; nothing was appended"));
      // The transaction rolled back (or never ran): continue from what storage holds.
      this.#load();
    }
  }

  #bindChain(chain: string): void {
    if (this.#chain === chain) return;
    if (this.#chain !== undefined) {
      throw new AuditError(
        "invalid-input",
        `this audit object holds chain ${this.#chain}, not ${chain}`,
      );
    }
    const ok = ChainIdSchema.safeParse(chain);
    if (!ok.success) throw new AuditError("invalid-input", "invalid chain id");
    this.#putMeta("chain", chain);
    this.#chain = chain;
  }

  #signer(kid: string): Promise<Signer> {
    const now = Date.now();
    const cached = this.#signers.get(kid);
    if (cached && now - cached.checkedAt < SIGNER_RECHECK_MS) return cached.signer;
    const signer = (async () => {
      await this.checkSigningKey(kid, now);
      return cached ? cached.signer : this.loadSigner(kid);
    })();
    this.#signers.set(kid, { signer, checkedAt: now });
    signer.catch(() => this.#signers.delete(kid));
    return signer;
  }

  #keys() {
    return stubSource(this.env.SIGIL_KEYS, KEYS_OBJECT);
  }

  /** Refuses anything but an active service key, so the log never signs with an agent's key. */
  protected async checkSigningKey(kid: string, now: number): Promise<void> {
    const stored = unwrap(await this.#keys()().get(kid));
    const r = stored === null ? undefined : fromStored(stored);
    if (r?.role !== "service" || !usableForNewRequest(r, now)) {
      throw new AuditError("unavailable", `key ${kid} is not an active service key`);
    }
  }

  /** Decrypts the service key from the KeysObject (tests override this with a fixed key). */
  protected async loadSigner(kid: string): Promise<Signer> {
    const keys = this.#keys();
    const { secret } = await edgeKeySecret(this.env, keys);
    return new SoftwareKeyProvider({ secret, store: new DoSecretStore(keys) }).getSigner(kid);
  }

  // ---------------------------------------------------------------- state

  #meta(k: string): string | undefined {
    return this.sql.exec<{ v: string }>("SELECT v FROM meta WHERE k = ?", k).toArray()[0]?.v;
  }

  #putMeta(k: string, v: string): void {
    this.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", k, v);
  }

  #load(): void {
    this.#chain = this.#meta("chain");
    const size = Number(this.#meta("size") ?? "0");
    const start = Number(this.#meta("start") ?? "0");
    if (
      !Number.isSafeInteger(size) ||
      !Number.isSafeInteger(start) ||
      size < 0 ||
      start < 0 ||
      start > size
    ) {
      throw new AuditError("inconsistent", "stored chain head is corrupt");
    }
    this.#start = start;
    if (size === 0) {
      this.#state = emptyChainState();
      return;
    }
    const hash = this.#meta("hash") ?? "";
    const frontier = this.#meta("frontier") ?? "";
    if (!/^[0-9a-f]{64}$/.test(hash) || frontier.length % (2 * HASH_SIZE) !== 0) {
      throw new AuditError("inconsistent", "stored chain head is corrupt");
    }
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < frontier.length; i += 2 * HASH_SIZE)
      hashes.push(fromHex(frontier.slice(i, i + 2 * HASH_SIZE)));
    this.#state = {
      size,
      headHash: hash,
      lastTimestamp: this.#meta("ts") || null,
      range: CompactRange.from(size, hashes),
    };
  }

  // ---------------------------------------------------------------- reads

  head(): Promise<Result<LogHead>> {
    return capture(() => ({
      size: this.#state.size,
      start: this.#start,
      headHash: this.#state.headHash,
      lastTimestamp: this.#state.lastTimestamp,
    }));
  }

  read(from: number, to: number): Promise<Result<(StoredRecord | undefined)[]>> {
    return capture(() => {
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0) {
        throw new AuditError("out-of-range", "read range must be non-negative integers");
      }
      if (to <= from) return [];
      if (to - from > MAX_READ)
        throw new AuditError("out-of-range", `read at most ${MAX_READ} records at once`);
      const out: (StoredRecord | undefined)[] = new Array(to - from).fill(undefined);
      const rows = this.sql
        .exec<{ idx: number; json: string; sums: string | null }>(
          "SELECT idx, json, sums FROM events WHERE idx >= ? AND idx < ? ORDER BY idx",
          Math.max(from, this.#start),
          to,
        )
        .toArray();
      for (const r of rows)
        out[r.idx - from] = r.sums ? { json: r.json, sums: r.sums } : { json: r.json };
      return out;
    });
  }

  nodes(refs: NodeRef[]): Promise<Result<(Uint8Array | undefined)[]>> {
    return capture(() =>
      refs.map((r) => {
        const row = this.sql
          .exec<{ h: ArrayBuffer }>("SELECT h FROM nodes WHERE k = ?", nodeKey(r))
          .toArray()[0];
        return row ? new Uint8Array(row.h) : undefined;
      }),
    );
  }

  latestCheckpoint(): Promise<Result<StoredCheckpoint | undefined>> {
    return capture(() => {
      const json = this.#meta("checkpoint");
      if (json === undefined) return undefined;
      const p = StoredCheckpointSchema.safeParse(JSON.parse(json));
      if (!p.success) throw new AuditError("inconsistent", "stored checkpoint is corrupt");
      return p.data;
    });
  }

  saveCheckpoint(expectedSize: number | null, cp: StoredCheckpoint): Promise<Result<boolean>> {
    return capture(() => {
      const p = StoredCheckpointSchema.safeParse(cp);
      if (!p.success) throw new AuditError("invalid-input", "malformed checkpoint");
      const json = this.#meta("checkpoint");
      const current = json === undefined ? null : (JSON.parse(json) as StoredCheckpoint).treeSize;
      if (current !== expectedSize) return false;
      this.#putMeta("checkpoint", JSON.stringify(p.data));
      return true;
    });
  }

  anchor(): Promise<Result<AuditAnchor | undefined>> {
    return capture(() => {
      const json = this.#meta("anchor");
      if (json === undefined) return undefined;
      const p = AuditAnchorSchema.safeParse(JSON.parse(json));
      if (!p.success) throw new AuditError("inconsistent", "stored retention anchor is corrupt");
      return p.data;
    });
  }

  prune(anchor: AuditAnchor): Promise<Result<void>> {
    return capture(() => {
      const p = AuditAnchorSchema.safeParse(anchor);
      if (!p.success) throw new AuditError("invalid-input", "malformed retention anchor");
      const old = this.#start;
      if (p.data.size <= old || p.data.size > this.#state.size) {
        throw new AuditError("out-of-range", `cannot prune to ${p.data.size}`);
      }
      this.ctx.storage.transactionSync(() => {
        this.#putMeta("anchor", JSON.stringify(p.data));
        this.#putMeta("start", String(p.data.size));
        this.sql.exec("DELETE FROM events WHERE idx < ?", p.data.size);
        for (const r of prunableNodes(old, p.data.size))
          this.sql.exec("DELETE FROM nodes WHERE k = ?", nodeKey(r));
      });
      this.#start = p.data.size;
    });
  }
}
