// Proof generation (from stored nodes, as the adapters hold them) against the RFC 9162
// definition and the verifiers; the compact range; what retention may prune.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CompactRange,
  consistencyRanges,
  EMPTY_ROOT,
  hashChildren,
  hashLeaf,
  inclusionRanges,
  type MerkleNode,
  type NodeRef,
  nodeKey,
  prunableNodes,
  resolveRanges,
  rootAt,
  verifyConsistency,
  verifyInclusion,
} from "../../shared/audit";
import { equalBytes, utf8 } from "../../shared/encoding";

function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return hashChildren(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function build(n: number) {
  const range = CompactRange.empty();
  const nodes: MerkleNode[] = [];
  const leaves: Uint8Array[] = [];
  const roots: Uint8Array[] = [EMPTY_ROOT];
  for (let i = 0; i < n; i++) {
    const leaf = hashLeaf(utf8(`leaf ${i}`));
    leaves.push(leaf);
    range.append(leaf, nodes);
    roots.push(range.root());
  }
  const store = new Map(nodes.map((x) => [nodeKey(x), x.hash]));
  const read = async (refs: readonly NodeRef[]) => refs.map((r) => store.get(nodeKey(r)));
  return { range, leaves, roots, store, read };
}

describe("merkle generation", () => {
  const t = build(70);

  it("compact range roots and stored-node roots equal the RFC 9162 definition at every size", async () => {
    for (let n = 0; n <= 70; n++) {
      expect(equalBytes(t.roots[n]!, mth(t.leaves.slice(0, n))), `size ${n}`).toBe(true);
      expect(equalBytes(await rootAt(n, t.read), t.roots[n]!), `size ${n}`).toBe(true);
    }
    const r = CompactRange.from(70, t.range.frontier);
    expect(equalBytes(r.root(), t.roots[70]!)).toBe(true);
    expect(() => CompactRange.from(71, t.range.frontier)).toThrow();
  });

  it("inclusion and consistency proofs verify for every index and size pair", async () => {
    for (let n = 1; n <= 40; n++) {
      for (let m = 0; m < n; m++) {
        const proof = await resolveRanges(inclusionRanges(m, n), t.read);
        expect(() => verifyInclusion(m, n, t.leaves[m]!, proof, t.roots[n]!)).not.toThrow();
        const c = await resolveRanges(consistencyRanges(m + 1, n), t.read);
        expect(() => verifyConsistency(m + 1, n, c, t.roots[m + 1]!, t.roots[n]!)).not.toThrow();
        // ...and fail against the neighbouring root.
        expect(() => verifyInclusion(m, n, t.leaves[m]!, proof, t.roots[n - 1]!)).toThrow();
      }
    }
  });

  it("a missing node fails closed", async () => {
    const read = async (refs: readonly NodeRef[]) => refs.map(() => undefined);
    await expect(rootAt(5, read)).rejects.toThrow(/missing/);
  });

  it("after pruning a prefix, proofs and roots for the retained part still resolve", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 69 }),
        fc.integer({ min: 0, max: 68 }),
        async (cut, first) => {
          const { store, read, roots, leaves } = build(70);
          const old = Math.min(first, cut - 1);
          for (const r of prunableNodes(0, old)) store.delete(nodeKey(r));
          for (const r of prunableNodes(old, cut)) store.delete(nodeKey(r));
          for (const n of [cut, Math.min(cut + 3, 70), 70]) {
            expect(equalBytes(await rootAt(n, read), roots[n]!)).toBe(true);
            for (let m = cut; m < n; m++) {
              const p = await resolveRanges(inclusionRanges(m, n), read);
              verifyInclusion(m, n, leaves[m]!, p, roots[n]!);
            }
            if (n > cut) {
              const c = await resolveRanges(consistencyRanges(cut, n), read);
              verifyConsistency(cut, n, c, roots[cut]!, roots[n]!);
            }
          }
          // Nothing inside [0, cut) is kept beyond the cut's own frontier.
          const kept = [...store.keys()].filter((k) => {
            const [l, i] = k.split(":").map(Number) as [number, number];
            return (i + 1) * 2 ** l <= cut;
          });
          expect(kept.length).toBeLessThanOrEqual(Math.ceil(Math.log2(cut + 1)));
        },
      ),
      { numRuns: 60 },
    );
  });
});
