// Signed evidence bundles (docs/incidents.md "Response", high and critical): the audit events of an
// incident's window as the NDJSON export (shared/audit/export.ts, with the signed checkpoint at its
// end), an inclusion proof of every event the detector named against that checkpoint, all signed
// with the service key. Stored once with the incident and never replaced; verifiable offline with
// the public keys alone (verifyEvidence), like an audit export.
import { z } from "zod";
import {
  type AuditKeyResolver,
  hashLeaf,
  type InclusionProofView,
  type OfflineReport,
  verifyExport,
  verifyInclusion,
} from "../audit";
import type { Signer, VerifyFn } from "../crypto";
import { canonicalJson, fromBase64, fromBase64Url, toBase64Url, utf8 } from "../encoding";
import type { Incident } from "./record";

export const EVIDENCE_TYPE = "sigil.incident.evidence";
/** The window exported at most (the newest events of it when longer). */
export const MAX_EVIDENCE_EVENTS = 2000;
const MAX_PROOFS = 256;

/** What building a bundle needs of the audit service (AuditService fits). */
export interface EvidenceSource {
  export(from?: number, to?: number): AsyncGenerator<string>;
  inclusionProof(index: number, treeSize?: number): Promise<InclusionProofView>;
}

const ProofSchema = z.object({
  index: z.number().int().min(0),
  treeSize: z.number().int().min(1),
  leafHash: z.string().max(64),
  rootHash: z.string().max(64),
  proof: z.array(z.string().max(64)).max(64),
});

export const EvidenceBundleSchema = z.strictObject({
  type: z.literal(EVIDENCE_TYPE),
  version: z.literal(1),
  incidentId: z.string().max(64),
  detector: z.string().max(64),
  severity: z.string().max(16),
  createdAt: z.string().max(64),
  from: z.number().int().min(0),
  to: z.number().int().min(0),
  eventIndexes: z.array(z.number().int().min(0)).max(MAX_PROOFS),
  export: z.string(),
  proofs: z.array(ProofSchema).max(MAX_PROOFS),
  kid: z.string().max(256),
  signature: z.string().max(128),
});
export type EvidenceBundle = z.infer<typeof EvidenceBundleSchema>;

const signedBytes = (b: Omit<EvidenceBundle, "signature">) =>
  utf8(`${EVIDENCE_TYPE}\n${canonicalJson(b)}`);

export async function buildEvidence(
  r: Incident,
  source: EvidenceSource,
  signer: Signer,
  createdAt: string,
): Promise<string> {
  const to = r.evidence.to;
  const from = Math.max(r.evidence.from, to - MAX_EVIDENCE_EVENTS);
  let ndjson = "";
  for await (const line of source.export(from, to)) ndjson += line;
  const indexes = r.evidence.eventIndexes.filter((i) => i >= from && i < to).slice(-MAX_PROOFS);
  const proofs: InclusionProofView[] = [];
  for (const i of indexes) proofs.push(await source.inclusionProof(i, to));
  const body: Omit<EvidenceBundle, "signature"> = {
    type: EVIDENCE_TYPE,
    version: 1,
    incidentId: r.incidentId,
    detector: r.detector,
    severity: r.severity,
    createdAt,
    from,
    to,
    eventIndexes: indexes,
    export: ndjson,
    proofs,
    kid: signer.kid,
  };
  const signature = toBase64Url(await signer.sign(signedBytes(body)));
  return JSON.stringify({ ...body, signature });
}

export interface EvidenceReport {
  valid: boolean;
  reason?: string;
  export?: OfflineReport;
}

/**
 * Offline: the bundle's signature under `serviceKey`, the export (every event, link, signature and
 * the checkpoint at `to`), and each inclusion proof against that checkpoint's root, for the very
 * event line the export holds at that index.
 */
export async function verifyEvidence(
  json: string,
  opts: { keys: AuditKeyResolver; verify: VerifyFn; serviceKey: Uint8Array },
): Promise<EvidenceReport> {
  let b: EvidenceBundle;
  try {
    b = EvidenceBundleSchema.parse(JSON.parse(json));
  } catch {
    return { valid: false, reason: "bundle is malformed" };
  }
  const { signature, ...body } = b;
  let sig: Uint8Array;
  try {
    sig = fromBase64Url(signature);
  } catch {
    return { valid: false, reason: "signature is malformed" };
  }
  if (!(await opts.verify(opts.serviceKey, signedBytes(body), sig)))
    return { valid: false, reason: "bundle signature does not verify" };
  const lines = b.export.split("\n").filter((l) => l.length > 0);
  const report = await verifyExport(
    lines.map((l) => `${l}\n`),
    { keys: opts.keys, verify: opts.verify },
  );
  if (!report.valid || !report.checkpoint?.verified)
    return { valid: false, reason: "export does not verify", export: report };
  if (report.from !== b.from || report.to !== b.to)
    return { valid: false, reason: "export covers another window", export: report };
  const header = JSON.parse(lines[0]!) as { checkpoint: { rootHash: string } };
  const root = fromBase64(header.checkpoint.rootHash);
  for (const p of b.proofs) {
    const line = lines[1 + p.index - b.from];
    if (p.treeSize !== b.to || line === undefined)
      return { valid: false, reason: `proof of ${p.index} is not against the export's checkpoint` };
    try {
      verifyInclusion(p.index, p.treeSize, hashLeaf(line), p.proof.map(fromBase64), root);
    } catch {
      return { valid: false, reason: `inclusion proof of ${p.index} does not verify` };
    }
  }
  if (b.proofs.length !== b.eventIndexes.length)
    return { valid: false, reason: "a proof is missing" };
  return { valid: true, export: report };
}
