// Per-event verification in the browser (docs/console.md "Audit explorer"): the same shared/
// code the service and the CLI use, on what the API sent. No DOM here, so the benchmark runs
// this very module in Node beside the browser (test/bench/console.ts).

import type { Sigil } from "../../sdk";
import {
  type AuditEvent,
  computeEventHash,
  eventJson,
  eventParts,
  signingBytes,
} from "../../shared/audit/event";
import { resolverFromJwks } from "../../shared/audit/jwks";
import { hashLeaf, verifyInclusion } from "../../shared/audit/merkle";
import { openCheckpoint } from "../../shared/audit/note";
import type { AuditKeyResolver } from "../../shared/audit/ports";
import { verifyEd25519 } from "../../shared/crypto/ed25519";
import { fromBase64, fromBase64Url } from "../../shared/encoding";

export interface TrustRoot {
  keys: AuditKeyResolver;
  /** The latest signed checkpoint, its signature verified against the JWKS. */
  treeSize: number;
  root: Uint8Array;
}

export type Check = { ok: true } | { ok: false; reason: string } | { ok: null; reason: string };

export interface EventVerdict {
  index: number;
  hash: Check;
  signature: Check;
  inclusion: Check;
  /** true: every check passed; false: one failed; null: not yet in a signed checkpoint. */
  ok: boolean | null;
}

interface JwkLike {
  kid?: string;
  x?: string;
}

/** Opens the checkpoint note with the key the JWKS publishes for it; throws if it does not verify. */
export async function trustRoot(
  jwks: { keys: readonly JwkLike[] },
  checkpoint: { treeSize: number; kid: string; checkpoint: string },
): Promise<TrustRoot> {
  const k = jwks.keys.find((x) => x.kid === checkpoint.kid);
  if (!k?.x) throw new Error(`checkpoint key ${checkpoint.kid} is not published`);
  const origin = checkpoint.checkpoint.split("\n", 1)[0] ?? "";
  const body = await openCheckpoint(
    checkpoint.checkpoint,
    [{ name: origin, publicKey: fromBase64Url(k.x) }],
    verifyEd25519,
    origin,
  );
  if (body.size !== checkpoint.treeSize)
    throw new Error("the checkpoint note's size differs from treeSize");
  return { keys: resolverFromJwks(jwks), treeSize: body.size, root: body.rootHash };
}

/** Hash, signature (key valid at the event's time) and inclusion in the signed tree. */
export async function verifyEvent(
  event: AuditEvent,
  trust: TrustRoot,
  proof: readonly string[] | undefined,
): Promise<EventVerdict> {
  const parts = eventParts(event);
  const hash: Check =
    computeEventHash(parts) === event.eventHash
      ? { ok: true }
      : { ok: false, reason: "the event does not hash to its eventHash" };
  let signature: Check;
  const key = await trust.keys(event.kid, event.timestamp);
  if (!key) signature = { ok: false, reason: `key ${event.kid} is not published` };
  else if (!key.validAt)
    signature = { ok: false, reason: `key ${event.kid} was not valid at the event's time` };
  else {
    let sig: Uint8Array | undefined;
    try {
      sig = fromBase64Url(event.signature);
    } catch {
      sig = undefined;
    }
    signature =
      sig && (await verifyEd25519(key.publicKey, signingBytes(parts), sig))
        ? { ok: true }
        : { ok: false, reason: "the signature does not verify" };
  }
  let inclusion: Check;
  if (event.index >= trust.treeSize || proof === undefined)
    inclusion = { ok: null, reason: "not yet in a signed checkpoint" };
  else {
    try {
      verifyInclusion(
        event.index,
        trust.treeSize,
        hashLeaf(eventJson(parts)),
        proof.map(fromBase64),
        trust.root,
      );
      inclusion = { ok: true };
    } catch (e) {
      inclusion = { ok: false, reason: `inclusion proof: ${(e as Error).message}` };
    }
  }
  const checks = [hash, signature, inclusion];
  const ok = checks.some((c) => c.ok === false)
    ? false
    : checks.some((c) => c.ok === null)
      ? null
      : true;
  return { index: event.index, hash, signature, inclusion, ok };
}

/** Verifies `events` (proofs fetched `parallel` at a time), calling onVerdict as each ends. */
export async function verifyAll(
  sigil: Sigil,
  trust: TrustRoot,
  events: readonly AuditEvent[],
  onVerdict: (v: EventVerdict) => void,
  parallel = 8,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < events.length) {
      const e = events[next++]!;
      const proof =
        e.index < trust.treeSize
          ? (await sigil.audit.inclusionProof({ index: e.index, treeSize: trust.treeSize })).proof
          : undefined;
      onVerdict(await verifyEvent(e, trust, proof));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}
