// What the CLI checks for itself rather than trusting the API: a job result's worker signature,
// an event's inclusion in a signed checkpoint (docs/cli.md "What the CLI verifies").
import type { AuditCheckpoint, AuditEvent, InclusionProof, JobRecord, JwkSet, Sigil } from "../sdk";
import { hashLeaf, openCheckpoint, verifyInclusion } from "../shared/audit";
import { verifyEd25519 } from "../shared/crypto";
import { canonicalJson, fromBase64, fromBase64Url, toBase64 } from "../shared/encoding";
import { verifyResult } from "../shared/jobs";

export type Verdict = { ok: true; detail: string } | { ok: false; detail: string };

function publicKeyOf(jwks: JwkSet, kid: string): Uint8Array | undefined {
  const k = jwks.keys.find((x) => x.kid === kid);
  if (!k) return undefined;
  try {
    const pk = fromBase64Url(k.x);
    return pk.length === 32 ? pk : undefined;
  } catch {
    return undefined;
  }
}

/** The result's signature under the worker key the service publishes, its job, tier and output. */
export async function verifyJobResult(
  sigil: Sigil,
  jobId: string,
  record: JobRecord,
): Promise<Verdict> {
  const r = record.result;
  if (!r) return { ok: false, detail: "the job has no result" };
  const pk = publicKeyOf(await sigil.wellKnownKeys(), r.kid);
  if (!pk) return { ok: false, detail: `worker key ${r.kid} is not published` };
  const v = await verifyResult(
    { result: r.signed, resultHash: r.resultHash, kid: r.kid, signature: r.signature },
    pk,
    verifyEd25519,
    { jobId, output: { stdout: r.stdout, stderr: r.stderr } },
  );
  if (!v.ok) return { ok: false, detail: `${v.reason}: ${v.detail}` };
  if (v.result.tier !== record.tier || v.result.image !== record.image)
    return { ok: false, detail: "the signed tier or image differs from the job's" };
  return { ok: true, detail: `signed by worker ${r.kid}` };
}

/** Event `index` is in the tree of the latest signed checkpoint, whose signature verifies. */
export async function verifyEventInclusion(
  sigil: Sigil,
  index: number,
): Promise<Verdict & { event?: AuditEvent; checkpoint?: AuditCheckpoint; proof?: InclusionProof }> {
  const [checkpoint, event, jwks] = await Promise.all([
    sigil.audit.checkpoint(),
    sigil.audit.get(index),
    sigil.wellKnownKeys(),
  ]);
  if (index >= checkpoint.treeSize)
    return {
      ok: false,
      detail: `index ${index} is past the checkpoint (tree size ${checkpoint.treeSize})`,
    };
  const pk = publicKeyOf(jwks, checkpoint.kid);
  if (!pk) return { ok: false, detail: `checkpoint key ${checkpoint.kid} is not published` };
  const note = String(checkpoint.checkpoint ?? "");
  const origin = note.split("\n", 1)[0] ?? "";
  let root: Uint8Array;
  try {
    const body = await openCheckpoint(
      note,
      [{ name: origin, publicKey: pk }],
      verifyEd25519,
      origin,
    );
    if (body.size !== checkpoint.treeSize)
      return { ok: false, detail: "the checkpoint note's size differs from treeSize" };
    root = body.rootHash;
  } catch (e) {
    return { ok: false, detail: `checkpoint signature: ${(e as Error).message}` };
  }
  const proof = await sigil.audit.inclusionProof({ index, treeSize: checkpoint.treeSize });
  const leaf = hashLeaf(canonicalJson(event));
  if (toBase64(leaf) !== proof.leafHash)
    return { ok: false, detail: "the event does not hash to the proof's leaf" };
  try {
    verifyInclusion(index, checkpoint.treeSize, leaf, proof.proof.map(fromBase64), root);
  } catch (e) {
    return { ok: false, detail: `inclusion proof: ${(e as Error).message}` };
  }
  return {
    ok: true,
    detail: `event ${index} is in the signed tree of size ${checkpoint.treeSize}`,
    event,
    checkpoint,
    proof,
  };
}
