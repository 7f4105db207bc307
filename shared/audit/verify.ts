// Chain verification (docs/audit.md "Verifying"): recompute every hash, check every link, index
// continuity, timestamp order and every signature against the key valid at that time; report the
// first failure with its index, a reason and, where it can be told, the member that was changed.
// Structure is checked in order; signatures of a window are verified in parallel.
import { equalBytes, fromBase64Url } from "../encoding";
import {
  type AuditEvent,
  type AuditEventField,
  changedFields,
  checkEvent,
  computeEventHash,
  type EventParts,
  eventJson,
  eventParts,
  GENESIS_HASH,
  HASHED_FIELDS,
  signingBytes,
} from "./event";
import { hashLeaf } from "./merkle";
import type { AuditKeyResolver, StoredRecord, VerifyFn } from "./ports";

export type VerifyCode =
  | "gap"
  | "reordering"
  | "malformed"
  | "wrong-chain"
  | "broken-link"
  | "tampered"
  | "timestamp-back"
  | "unknown-key"
  | "key-not-valid"
  | "bad-signature"
  | "merkle-mismatch"
  | "anchor-invalid"
  | "out-of-range";

export interface VerifyFailure {
  index: number;
  code: VerifyCode;
  reason: string;
  field?: AuditEventField;
}

export interface VerifyReport {
  valid: boolean;
  checked: number;
  firstInvalid?: VerifyFailure;
}

/** What the event before the verified range looked like (genesis, the anchor, or index from−1). */
export interface ChainCursor {
  nextIndex: number;
  headHash: string;
  lastTimestamp: string | null;
}

export const genesisCursor = (): ChainCursor => ({
  nextIndex: 0,
  headHash: GENESIS_HASH,
  lastTimestamp: null,
});

export interface ChainVerifierOptions {
  chain: string;
  keys: AuditKeyResolver;
  verify: VerifyFn;
  start: ChainCursor;
}

interface Checked {
  position: number;
  event: AuditEvent;
  parts: EventParts;
  changed: AuditEventField[];
}

const HASHED = new Set<AuditEventField>(HASHED_FIELDS);

/** Verifies consecutive windows of stored records; stateful across windows. */
export class ChainVerifier {
  private cursor: ChainCursor;
  private checkedCount = 0;
  private failure: VerifyFailure | undefined;

  constructor(private readonly opts: ChainVerifierOptions) {
    this.cursor = { ...opts.start };
  }

  get checked(): number {
    return this.checkedCount;
  }

  get position(): ChainCursor {
    return { ...this.cursor };
  }

  report(): VerifyReport {
    return this.failure
      ? { valid: false, checked: this.checkedCount, firstInvalid: this.failure }
      : { valid: true, checked: this.checkedCount };
  }

  /**
   * Verifies records meant for positions cursor.nextIndex, +1, ... Returns the first failure (and
   * stops) or undefined. `leaves`, if given, are the stored Merkle leaf hashes for the same
   * positions; `onLeaf` receives each verified event's leaf hash (for root recomputation).
   */
  async window(
    records: readonly (StoredRecord | undefined)[],
    leaves?: readonly (Uint8Array | undefined)[],
    onLeaf?: (leaf: Uint8Array) => void,
  ): Promise<VerifyFailure | undefined> {
    if (this.failure) return this.failure;
    const ok: Checked[] = [];
    const leafHashes: Uint8Array[] = [];
    let structural: VerifyFailure | undefined;
    let lastIncluded = false;
    let cur = { ...this.cursor };
    for (let j = 0; j < records.length; j++) {
      const position = cur.nextIndex;
      const res = this.structure(position, cur, records[j], records[j + 1], records.slice(j + 1));
      if ("code" in res) {
        structural = res;
        break;
      }
      const leaf = hashLeaf(eventJson(res.parts));
      const stored = leaves?.[j];
      ok.push(res);
      leafHashes.push(leaf);
      if (leaves && (stored === undefined || !equalBytes(stored, leaf))) {
        // Still signature-checked: a bad key or signature on this event is the better reason.
        const field = res.changed[0];
        structural = {
          index: position,
          code: "merkle-mismatch",
          reason: "stored Merkle leaf does not match the event",
          ...(field ? { field } : {}),
        };
        lastIncluded = true;
        break;
      }
      cur = {
        nextIndex: position + 1,
        headHash: res.event.eventHash,
        lastTimestamp: res.event.timestamp,
      };
    }
    const sigFailures = await Promise.all(ok.map((c) => this.signature(c)));
    const firstSig = sigFailures.findIndex((f) => f !== undefined);
    if (firstSig >= 0) {
      this.fail(sigFailures[firstSig]!, firstSig, ok, leafHashes, onLeaf);
      return this.failure;
    }
    if (structural) {
      this.fail(structural, ok.length - (lastIncluded ? 1 : 0), ok, leafHashes, onLeaf);
      return this.failure;
    }
    this.advance(ok, leafHashes, onLeaf);
    return undefined;
  }

  /** Marks the range as reaching past what is stored. */
  missing(index: number, reason: string): VerifyFailure {
    this.failure ??= { index, code: "gap", reason, field: "index" };
    return this.failure;
  }

  private fail(
    f: VerifyFailure,
    validCount: number,
    ok: Checked[],
    leaves: Uint8Array[],
    onLeaf?: (leaf: Uint8Array) => void,
  ): void {
    this.advance(ok.slice(0, validCount), leaves.slice(0, validCount), onLeaf);
    this.failure = f;
  }

  private advance(ok: Checked[], leaves: Uint8Array[], onLeaf?: (leaf: Uint8Array) => void): void {
    const last = ok[ok.length - 1];
    if (last) {
      this.cursor = {
        nextIndex: last.position + 1,
        headHash: last.event.eventHash,
        lastTimestamp: last.event.timestamp,
      };
    }
    this.checkedCount += ok.length;
    if (onLeaf) for (const l of leaves) onLeaf(l);
  }

  private structure(
    position: number,
    prev: ChainCursor,
    record: StoredRecord | undefined,
    next: StoredRecord | undefined,
    later: readonly (StoredRecord | undefined)[],
  ): Checked | VerifyFailure {
    const fail = (code: VerifyCode, reason: string, field?: AuditEventField): VerifyFailure =>
      field ? { index: position, code, reason, field } : { index: position, code, reason };
    if (!record) return fail("gap", `no event stored at index ${position}`, "index");
    let raw: unknown;
    try {
      raw = JSON.parse(record.json);
    } catch {
      return fail("malformed", "stored event is not JSON");
    }
    const checked = checkEvent(raw);
    if ("issue" in checked) {
      const { field, message } = checked.issue;
      return fail("malformed", `malformed ${field ?? "event"}: ${message}`, field);
    }
    const event = checked.event;
    const parts = eventParts(event);
    const changed = changedFields(parts, record.sums);

    if (event.index !== position) {
      const reorder =
        event.index < position || later.some((r) => r !== undefined && indexOf(r) === position);
      return reorder
        ? fail("reordering", `event at position ${position} claims index ${event.index}`, "index")
        : fail("gap", `expected index ${position}, found ${event.index}`, "index");
    }
    if (event.chain !== this.opts.chain) {
      return fail("wrong-chain", `event belongs to chain ${JSON.stringify(event.chain)}`, "chain");
    }
    if (event.previousHash !== prev.headHash) {
      return fail(
        "broken-link",
        "previousHash does not match the previous event's hash",
        "previousHash",
      );
    }
    const recomputed = computeEventHash(parts);
    if (recomputed !== event.eventHash) {
      const content = changed.find((f) => HASHED.has(f));
      if (content) return fail("tampered", `tampered ${content}`, content);
      if (changed.includes("eventHash")) return fail("tampered", "tampered eventHash", "eventHash");
      // No usable checksums: the next event's link tells a rewritten hash from rewritten content.
      const nextPrev = next ? previousHashOf(next) : undefined;
      if (nextPrev === recomputed) return fail("tampered", "tampered eventHash", "eventHash");
      return fail("tampered", "event content does not match eventHash");
    }
    if (prev.lastTimestamp !== null && event.timestamp < prev.lastTimestamp) {
      return fail("timestamp-back", "timestamp goes back in time", "timestamp");
    }
    return { position, event, parts, changed };
  }

  private async signature(c: Checked): Promise<VerifyFailure | undefined> {
    const { event } = c;
    const fail = (code: VerifyCode, reason: string, field: AuditEventField): VerifyFailure => ({
      index: c.position,
      code,
      reason,
      field,
    });
    const key = await this.opts.keys(event.kid, event.timestamp);
    if (!key) return fail("unknown-key", `unknown key ${JSON.stringify(event.kid)}`, "kid");
    if (!key.validAt) {
      return fail(
        "key-not-valid",
        `key ${JSON.stringify(event.kid)} was not valid at the event time`,
        "kid",
      );
    }
    const ok = await this.opts
      .verify(key.publicKey, signingBytes(c.parts), fromBase64Url(event.signature))
      .catch(() => false);
    if (!ok) {
      return fail(
        "bad-signature",
        "bad signature",
        c.changed.includes("kid") ? "kid" : "signature",
      );
    }
    return undefined;
  }
}

// Rare-path peeks at neighbours (only when naming a failure), so a plain parse is fine.
function member(r: StoredRecord, name: "index" | "previousHash"): unknown {
  try {
    const o = JSON.parse(r.json) as Record<string, unknown>;
    return o[name];
  } catch {
    return undefined;
  }
}

function indexOf(r: StoredRecord): number | undefined {
  const v = member(r, "index");
  return typeof v === "number" ? v : undefined;
}

function previousHashOf(r: StoredRecord): string | undefined {
  const v = member(r, "previousHash");
  return typeof v === "string" ? v : undefined;
}
