// NDJSON export format and the offline verifier: the export plus the public keys are enough to
// check every event (hash, link, order, signature) and, when a checkpoint is included, that the
// events are exactly the signed tree.
import { z } from "zod";
import { fromBase64, toBase64 } from "../encoding";
import { AuditTimestampSchema, ChainIdSchema, GENESIS_HASH } from "./event";
import { CompactRange, HASH_SIZE, rangeBlocks } from "./merkle";
import { openCheckpoint } from "./note";
import type { AuditKeyResolver, StoredRecord, VerifyFn } from "./ports";
import { ChainVerifier, type VerifyFailure, type VerifyReport } from "./verify";

export const EXPORT_TYPE = "sigil.audit.export";

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const CheckpointViewSchema = z.object({
  treeSize: z.number().int().min(0),
  rootHash: z.string(),
  timestamp: z.string(),
  signature: z.string(),
  kid: z.string().min(1),
  checkpoint: z.string(),
});

export const ExportHeaderSchema = z.strictObject({
  type: z.literal(EXPORT_TYPE),
  version: z.literal(1),
  chain: ChainIdSchema,
  origin: z.string().min(1),
  /** Events [from, to) follow, one per line. */
  from: z.number().int().min(0),
  to: z.number().int().min(0),
  /** eventHash and timestamp of index from−1 (null when from = 0). */
  previous: z.object({ eventHash: Hex64, timestamp: AuditTimestampSchema }).nullable(),
  /** Merkle compact range of [0, from): lets the verifier rebuild the root at `to`. */
  frontier: z.array(z.string()),
  /** Signed checkpoint at treeSize = to (null for an empty export). */
  checkpoint: CheckpointViewSchema.nullable(),
  /** When from is a retention cut: the anchor checkpoint at treeSize = from. */
  anchorCheckpoint: CheckpointViewSchema.nullable(),
});
export type ExportHeader = z.infer<typeof ExportHeaderSchema>;

export interface OfflineReport extends VerifyReport {
  chain?: string;
  from?: number;
  to?: number;
  /** The checkpoint's signature verified and its root equals the root rebuilt from the export. */
  checkpoint?: { treeSize: number; verified: boolean; reason?: string };
}

const WINDOW = 1000;

async function* linesOf(input: AsyncIterable<string> | Iterable<string>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of input) {
    buf += chunk;
    let start = 0;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n", start)) {
      const line = buf.slice(start, nl).trim();
      start = nl + 1;
      if (line) yield line;
    }
    buf = buf.slice(start);
  }
  if (buf.trim()) yield buf.trim();
}

/**
 * Verifies an NDJSON export with only the public keys (resolved by kid and time, as
 * /.well-known/sigil/keys publishes them). Accepts whole lines or arbitrary text chunks.
 */
export async function verifyExport(
  input: AsyncIterable<string> | Iterable<string>,
  opts: { keys: AuditKeyResolver; verify: VerifyFn },
): Promise<OfflineReport> {
  const lines = linesOf(input);
  const first = await lines.next();
  const bad = (reason: string, index = 0): OfflineReport => ({
    valid: false,
    checked: 0,
    firstInvalid: { index, code: "malformed", reason },
  });
  if (first.done) return bad("empty export");
  let header: ExportHeader;
  try {
    header = ExportHeaderSchema.parse(JSON.parse(first.value));
  } catch {
    return bad("export header is malformed");
  }
  const { from, to } = header;
  if (to < from) return bad("export range is inverted", from);
  if (from > 0 && !header.previous) return bad("export from > 0 needs the previous event", from);

  let range: CompactRange | undefined;
  try {
    const frontier = header.frontier.map((h) => fromBase64(h));
    if (
      frontier.length !== rangeBlocks(0, from).length ||
      frontier.some((h) => h.length !== HASH_SIZE)
    ) {
      throw new Error("frontier size");
    }
    range = CompactRange.from(from, frontier);
  } catch {
    range = undefined; // Without a usable frontier the chain still verifies; the tree cannot.
  }

  const base = { chain: header.chain, from, to };
  if (header.anchorCheckpoint && range) {
    const ok = await checkSignedRoot(
      header.anchorCheckpoint,
      header.origin,
      from,
      range.root(),
      opts,
    );
    if (ok)
      return {
        ...base,
        valid: false,
        checked: 0,
        firstInvalid: { index: from, code: "anchor-invalid", reason: ok },
      };
  }

  const verifier = new ChainVerifier({
    chain: header.chain,
    keys: opts.keys,
    verify: opts.verify,
    start: {
      nextIndex: from,
      headHash: header.previous?.eventHash ?? GENESIS_HASH,
      lastTimestamp: header.previous?.timestamp ?? null,
    },
  });
  const onLeaf = range ? (leaf: Uint8Array) => range.append(leaf, []) : undefined;
  let window: StoredRecord[] = [];
  let failure: VerifyFailure | undefined;
  let seen = 0;
  for await (const line of lines) {
    window.push({ json: line });
    seen++;
    if (window.length === WINDOW) {
      failure = await verifier.window(window, undefined, onLeaf);
      window = [];
      if (failure) break;
    }
  }
  if (!failure && window.length) failure = await verifier.window(window, undefined, onLeaf);
  if (!failure && seen !== to - from) {
    failure = verifier.missing(
      from + seen,
      `export declares ${to - from} events but holds ${seen}`,
    );
  }
  const report: OfflineReport = { ...base, ...verifier.report() };
  if (failure || !header.checkpoint) return report;

  if (!range) {
    report.checkpoint = {
      treeSize: header.checkpoint.treeSize,
      verified: false,
      reason: "no usable frontier",
    };
    return report;
  }
  const reason = await checkSignedRoot(header.checkpoint, header.origin, to, range.root(), opts);
  report.checkpoint = reason
    ? { treeSize: header.checkpoint.treeSize, verified: false, reason }
    : { treeSize: header.checkpoint.treeSize, verified: true };
  if (reason) {
    report.valid = false;
    report.firstInvalid = { index: Math.max(to - 1, 0), code: "merkle-mismatch", reason };
  }
  return report;
}

async function checkSignedRoot(
  cp: z.infer<typeof CheckpointViewSchema>,
  origin: string,
  size: number,
  root: Uint8Array,
  opts: { keys: AuditKeyResolver; verify: VerifyFn },
): Promise<string | undefined> {
  try {
    const key = await opts.keys(cp.kid, cp.timestamp);
    if (!key) return "checkpoint key unknown";
    const body = await openCheckpoint(
      cp.checkpoint,
      [{ name: origin, publicKey: key.publicKey }],
      opts.verify,
      origin,
    );
    if (body.size !== size) return `checkpoint is for size ${body.size}, not ${size}`;
    if (toBase64(body.rootHash) !== toBase64(root))
      return "events do not hash to the checkpoint root";
    return undefined;
  } catch (e) {
    return `checkpoint invalid: ${e instanceof Error ? e.message : String(e)}`;
  }
}
