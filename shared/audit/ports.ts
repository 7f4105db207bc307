// The audit trail's ports: what it needs from crypto (shared/crypto's types; the implementation
// is injected) and what a storage adapter must provide (memory, Redis, Durable Object).
import { z } from "zod";
import type { AuditAppendInput, AuditEvent } from "./event";
import type { NodeRef } from "./merkle";

export type { Signer, VerifyFn } from "../crypto";

/** The key that had `kid`, and whether it was valid at `timestamp` (RFC 3339). */
export type AuditKeyResolver = (
  kid: string,
  timestamp: string,
) => Promise<{ publicKey: Uint8Array; validAt: boolean } | undefined>;

/** What the chain looks like at its end; `start` > 0 once a prefix was pruned. */
export interface LogHead {
  /** Number of events ever appended (= next index). */
  size: number;
  /** First index still stored (retention prunes [0, start)). */
  start: number;
  /** eventHash of index size-1, or 64 zeros when empty. */
  headHash: string;
  /** Timestamp of index size-1, or null when empty. */
  lastTimestamp: string | null;
}

/**
 * One stored event as the adapter holds it: the canonical JSON of the signed event plus an
 * unsigned per-field checksum string used only to name the tampered field in verify reports.
 */
export interface StoredRecord {
  json: string;
  sums?: string;
}

/** A signed checkpoint as kept by the log (the latest one, and the retention anchor's). */
export interface StoredCheckpoint {
  treeSize: number;
  /** base64 (standard) of the 32-byte root, as in the checkpoint body. */
  rootHash: string;
  /** Timestamp of the last event covered (committed to by the root), or signing time if empty. */
  timestamp: string;
  /** The C2SP signed note (checkpoint body + signature lines). */
  note: string;
  /** base64url Ed25519 signature over the checkpoint body. */
  signature: string;
  kid: string;
}

/**
 * What an adapter reads back for a stored checkpoint (storage is not trusted to be well-formed).
 */
export const StoredCheckpointSchema = z.object({
  treeSize: z.number().int().min(0),
  rootHash: z.string(),
  timestamp: z.string(),
  note: z.string(),
  signature: z.string(),
  kid: z.string(),
}) satisfies z.ZodType<StoredCheckpoint>;

/** What retention leaves behind at the cut so the remainder still verifies. */
export interface AuditAnchor {
  /** The cut: events [0, size) were archived and pruned. */
  size: number;
  /** eventHash and timestamp of index size-1 (the link and clock the next event continues). */
  eventHash: string;
  timestamp: string;
  /** Signed checkpoint at treeSize = size. */
  checkpoint: StoredCheckpoint;
}

export const AuditAnchorSchema = z.object({
  size: z.number().int().min(1),
  eventHash: z.string().regex(/^[0-9a-f]{64}$/),
  timestamp: z.string(),
  checkpoint: StoredCheckpointSchema,
}) satisfies z.ZodType<AuditAnchor>;

export interface AppendOptions {
  /** Give up (with a definite "not appended" when possible) after this long. */
  timeoutMs?: number;
  /**
   * A request nonce to reserve in the same atomic step that stores the event: the append fails
   * with `replay` (nothing stored) if the nonce was already used. Only for logs whose
   * `reservesNonces` is true; any other log refuses the append rather than drop the check.
   */
  nonce?: NonceClaim;
}

/** A verified request's nonce, not yet reserved (docs/http-api.md: never accepted twice). */
export interface NonceClaim {
  readonly keyid: string;
  readonly nonce: string;
  readonly ttlSeconds: number;
}

/**
 * The audit-log port, one instance per chain. `append` resolves only once the event is durably
 * stored (adapter-defined, documented per adapter) and rejects with an AuditError otherwise.
 */
export interface AuditLogPort {
  readonly chain: string;
  append(input: AuditAppendInput, options?: AppendOptions): Promise<AuditEvent>;
  /** Whether append can reserve a request nonce with the event (AppendOptions.nonce). */
  readonly reservesNonces?: boolean;
  head(): Promise<LogHead>;
  /** Records at positions [from, to); undefined where nothing is stored (gap or pruned). */
  read(from: number, to: number): Promise<(StoredRecord | undefined)[]>;
  /** Merkle node hashes (level 0 = leaf hashes); undefined where missing. */
  nodes(refs: readonly NodeRef[]): Promise<(Uint8Array | undefined)[]>;
  latestCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /**
   * Compare-and-set of the latest checkpoint: succeeds only if the current one has `expectedSize`
   * (null: none).
   */
  saveCheckpoint(expectedSize: number | null, checkpoint: StoredCheckpoint): Promise<boolean>;
  anchor(): Promise<AuditAnchor | undefined>;
  /** Drop events [start, anchor.size) and the Merkle nodes no longer needed; keep the anchor. */
  prune(anchor: AuditAnchor): Promise<void>;
  close(): Promise<void>;
}

export type AuditErrorCode =
  | "invalid-input"
  | "not-found"
  | "out-of-range"
  | "timeout"
  | "outcome-unknown"
  | "unavailable"
  | "conflict"
  | "inconsistent"
  | "closed"
  | "replay";

/**
 * Every audit failure is one of these, with a stable code the HTTP layer maps to a problem type.
 */
export class AuditError extends Error {
  readonly code: AuditErrorCode;
  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuditError";
    this.code = code;
  }
}

/** What a log without `reservesNonces` answers to AppendOptions.nonce: never a silent drop. */
export const nonceUnsupported = () =>
  new AuditError("unavailable", "this audit log cannot reserve request nonces");
