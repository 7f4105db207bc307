// Signed compliance reports (docs/compliance.md "Reports"): one streaming scan of a period's events
// through each control's check, a signed checkpoint, and for every cited event the event itself
// plus its inclusion proof, so someone who does not trust Sigil checks every claim offline with
// the service's public key alone (verifyReport; `sigil compliance verify`).
import { z } from "zod";
import {
  type AuditEvent,
  type AuditKeyResolver,
  type AuditService,
  AuditTimestampSchema,
  checkEvent,
  eventJson,
  eventParts,
  hashLeaf,
  type Signer,
  type VerifyFn,
  verifyConsistency,
  verifyInclusion,
} from "../audit";
import { openCheckpoint } from "../audit/note";
import { uuidV7 } from "../crypto/uuid";
import { canonicalBytes, fromBase64, fromBase64Url, toBase64, toBase64Url } from "../encoding";
import { type CheckContext, type CheckRun, type ComplianceFacts, startCheck } from "./checks";
import type { Framework } from "./framework";

/** Longest period one report covers (ten years and leap days): bounds the scan a request starts. */
export const MAX_PERIOD_DAYS = 3660;
const DAY = 86_400_000;
const WINDOW = 1000;

export const PeriodSchema = z
  .strictObject({ from: AuditTimestampSchema, to: AuditTimestampSchema })
  .refine((p) => Date.parse(p.from) < Date.parse(p.to), "period must end after it starts")
  .refine(
    (p) => Date.parse(p.to) - Date.parse(p.from) <= MAX_PERIOD_DAYS * DAY,
    `period must be at most ${MAX_PERIOD_DAYS} days`,
  );
export type Period = z.infer<typeof PeriodSchema>;

const B64 = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9+/]{43}=$/, "must be a base64 SHA-256 hash");
const Status = z.enum(["met", "not_met", "not_applicable"]);

export const ReportControlSchema = z.strictObject({
  id: z.string(),
  reference: z.string(),
  title: z.string(),
  check: z.string(),
  status: Status,
  evidence: z.strictObject({
    count: z.number().int().min(0),
    eventIndexes: z.array(z.number().int().min(0)),
  }),
  findings: z.array(z.string()),
});

export const ComplianceReportSchema = z.strictObject({
  type: z.literal("sigil.compliance.report"),
  reportId: z.string(),
  framework: z.string(),
  frameworkName: z.string(),
  version: z.string(),
  period: z.strictObject({ from: z.string(), to: z.string() }),
  /** The log indexes the period covers: [from, to). */
  range: z.strictObject({ from: z.number().int().min(0), to: z.number().int().min(0) }),
  generatedAt: z.string(),
  checkpoint: z.strictObject({
    treeSize: z.number().int().min(0),
    rootHash: B64,
    timestamp: z.string(),
    note: z.string().max(4096),
  }),
  controls: z.array(ReportControlSchema),
  /** Every cited event once, with its inclusion proof at checkpoint.treeSize. */
  evidence: z.array(
    z.strictObject({
      index: z.number().int().min(0),
      event: z.record(z.string(), z.unknown()),
      proof: z.array(B64).max(64),
    }),
  ),
  /** Percentage of applicable controls met (integer, 100 when none applies). */
  score: z.number().int().min(0).max(100),
  signature: z.string(),
  kid: z.string(),
});
export type ComplianceReport = z.infer<typeof ComplianceReportSchema>;
export type UnsignedReport = Omit<ComplianceReport, "signature" | "kid">;

export interface GenerateOptions {
  audit: AuditService;
  framework: Framework;
  period: Period;
  facts: ComplianceFacts;
  /** The service key (the one that signs checkpoints). */
  signer: Signer;
  now?: () => number;
}

/** Smallest index in [lo, hi) whose event's timestamp is ≥ t (hi if none). Timestamps never go back. */
async function firstAtOrAfter(
  audit: AuditService,
  lo: number,
  hi: number,
  t: number,
): Promise<number> {
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const [rec] = await audit.log.read(mid, mid + 1);
    const ts = rec
      ? Date.parse((JSON.parse(rec.json) as { timestamp?: string }).timestamp ?? "")
      : Number.NaN;
    // An unreadable event counts as "before": the chain check over the range reports it.
    if (Number.isFinite(ts) && ts >= t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The index range of a period's events. */
export async function periodRange(
  audit: AuditService,
  period: Period,
): Promise<{ from: number; to: number }> {
  const head = await audit.log.head();
  const from = await firstAtOrAfter(audit, head.start, head.size, Date.parse(period.from));
  const to = await firstAtOrAfter(audit, from, head.size, Date.parse(period.to));
  return { from, to };
}

export async function generateReport(o: GenerateOptions): Promise<ComplianceReport> {
  const { audit, framework, period, facts } = o;
  const range = await periodRange(audit, period);
  const runs: CheckRun[] = framework.controls.map((c) => startCheck(c.check, facts));
  for (let a = range.from; a < range.to; a += WINDOW) {
    const b = Math.min(a + WINDOW, range.to);
    const recs = await audit.log.read(a, b);
    for (const rec of recs) {
      if (!rec) continue;
      let v: unknown;
      try {
        v = JSON.parse(rec.json);
      } catch {
        continue; // malformed: the chain check names it
      }
      const c = checkEvent(v);
      if (!("event" in c)) continue;
      for (const r of runs) r.see(c.event);
    }
  }
  const chain = await audit.verify(range.from, range.to);
  const ctx: CheckContext = { facts, period, chain };
  const outcomes = runs.map((r) => r.finish(ctx));
  const cp = await audit.checkpoint();
  const cited = [...new Set(outcomes.flatMap((x) => x.cited))]
    .filter((i) => i < cp.treeSize)
    .sort((x, y) => x - y);
  const evidence: UnsignedReport["evidence"] = [];
  for (const index of cited) {
    const [rec] = await audit.log.read(index, index + 1);
    if (!rec) continue;
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(rec.json) as Record<string, unknown>;
    } catch {
      continue;
    }
    const p = await audit.inclusionProof(index, cp.treeSize);
    evidence.push({ index, event, proof: p.proof });
  }
  const applicable = outcomes.filter((x) => x.status !== "not_applicable");
  const met = applicable.filter((x) => x.status === "met").length;
  const unsigned: UnsignedReport = {
    type: "sigil.compliance.report",
    reportId: uuidV7(),
    framework: framework.id,
    frameworkName: framework.name,
    version: framework.version,
    period: { from: period.from, to: period.to },
    range,
    generatedAt: new Date((o.now ?? Date.now)()).toISOString(),
    checkpoint: {
      treeSize: cp.treeSize,
      rootHash: cp.rootHash,
      timestamp: cp.timestamp,
      note: cp.checkpoint,
    },
    controls: framework.controls.map((c, i) => ({
      id: c.id,
      reference: c.reference,
      title: c.title,
      check: c.check.kind,
      status: outcomes[i]!.status,
      evidence: { count: outcomes[i]!.count, eventIndexes: outcomes[i]!.cited },
      findings: outcomes[i]!.findings,
    })),
    evidence,
    score: applicable.length === 0 ? 100 : Math.floor((met * 100) / applicable.length),
  };
  const signature = await o.signer.sign(canonicalBytes(unsigned));
  return { ...unsigned, signature: toBase64Url(signature), kid: o.signer.kid };
}

export interface ReportCheck {
  valid: boolean;
  errors: string[];
}

export interface VerifyReportOptions {
  /** The service's Ed25519 public key (32 bytes), trusted out of band (its JWKS). */
  publicKey: Uint8Array;
  verify: VerifyFn;
  /**
   * A newer signed checkpoint and the consistency proof from the report's tree size to it: shows
   * the log was not rewritten since the report.
   */
  newer?: { note: string; proof: readonly string[] };
}

/**
 * Verifies a report offline: its signature, its checkpoint's signature, that every cited event is
 * in the log at that checkpoint (leaf hash from the event itself, so an event changed in storage
 * fails) and that every control's citations are present; with `newer`, consistency.
 */
export async function verifyReport(input: unknown, o: VerifyReportOptions): Promise<ReportCheck> {
  const errors: string[] = [];
  const parsed = ComplianceReportSchema.safeParse(input);
  if (!parsed.success)
    return { valid: false, errors: [`malformed report: ${z.prettifyError(parsed.error)}`] };
  const r = parsed.data;
  const { signature, kid: _kid, ...unsigned } = r;
  let sig: Uint8Array;
  try {
    sig = fromBase64Url(signature);
  } catch {
    sig = new Uint8Array(0);
  }
  if (!(await o.verify(o.publicKey, canonicalBytes(unsigned), sig)))
    errors.push("report signature does not verify");
  let root: Uint8Array | undefined;
  try {
    const origin = r.checkpoint.note.slice(0, r.checkpoint.note.indexOf("\n"));
    const cp = await openCheckpoint(
      r.checkpoint.note,
      [{ name: origin, publicKey: o.publicKey }],
      o.verify,
    );
    if (cp.size !== r.checkpoint.treeSize || toBase64(cp.rootHash) !== r.checkpoint.rootHash)
      errors.push("checkpoint note does not match the report's checkpoint");
    else root = cp.rootHash;
  } catch (e) {
    errors.push(`checkpoint: ${(e as Error).message}`);
  }
  const byIndex = new Map(r.evidence.map((x) => [x.index, x]));
  for (const x of r.evidence) {
    const c = checkEvent(x.event);
    if (!("event" in c) || c.event.index !== x.index) {
      errors.push(`evidence ${x.index}: not a well-formed event at that index`);
      continue;
    }
    if (!root) continue;
    try {
      const leaf = hashLeaf(eventJson(eventParts(c.event as AuditEvent)));
      verifyInclusion(x.index, r.checkpoint.treeSize, leaf, x.proof.map(fromBase64), root);
    } catch (e) {
      errors.push(`evidence ${x.index}: not in the log at the checkpoint: ${(e as Error).message}`);
    }
  }
  for (const c of r.controls) {
    for (const i of c.evidence.eventIndexes)
      if (!byIndex.has(i)) errors.push(`control ${c.id} cites event ${i} without its proof`);
  }
  if (o.newer && root) {
    try {
      const origin = o.newer.note.slice(0, o.newer.note.indexOf("\n"));
      const later = await openCheckpoint(
        o.newer.note,
        [{ name: origin, publicKey: o.publicKey }],
        o.verify,
      );
      if (later.size < r.checkpoint.treeSize)
        errors.push("the newer checkpoint is older than the report's");
      else if (later.size === r.checkpoint.treeSize) {
        if (toBase64(later.rootHash) !== r.checkpoint.rootHash)
          errors.push("the log was rewritten: same size, other root");
      } else
        verifyConsistency(
          r.checkpoint.treeSize,
          later.size,
          o.newer.proof.map(fromBase64),
          root,
          later.rootHash,
        );
    } catch (e) {
      errors.push(`newer checkpoint: ${(e as Error).message}`);
    }
  }
  return { valid: errors.length === 0, errors };
}

/**
 * The offline check of a report as `sigil compliance verify` runs it: the signing key is looked up
 * by the report's `kid` in the service's published keys (`GET /.well-known/sigil/keys`) and must
 * have been valid when the report was generated; then verifyReport.
 */
export async function verifyReportWithKeys(
  input: unknown,
  o: Omit<VerifyReportOptions, "publicKey"> & { keys: AuditKeyResolver },
): Promise<ReportCheck> {
  const head = z
    .object({ kid: z.string().max(256), generatedAt: z.string().max(64) })
    .safeParse(input);
  if (!head.success) return { valid: false, errors: ["malformed report: no kid or generatedAt"] };
  const k = await o.keys(head.data.kid, head.data.generatedAt);
  if (!k) return { valid: false, errors: [`signing key ${head.data.kid} is not in the key set`] };
  if (!k.validAt)
    return {
      valid: false,
      errors: [`signing key ${head.data.kid} was not valid when the report was generated`],
    };
  const { keys: _keys, ...rest } = o;
  return verifyReport(input, { ...rest, publicKey: k.publicKey });
}
