// RFC 9162 (RFC 6962) Merkle tree over the audit events: hashing, the compact range a sequencer
// keeps, proof generation from stored node hashes, and the proof verifiers (RFC 9162 §2.1.3.2 and
// §2.1.4.2, plus the subtree proofs of the transparency-dev vectors).
//
// Verifiers take indexes as number | bigint and compute in bigint: JS bitwise operators are 32-bit,
// and verifiers face hostile sizes up to 2^64. Generation runs on our own sizes (< 2^53) with
// plain arithmetic, never bitwise operators.
import { equalBytes, sha256Bytes, sha256Concat } from "../encoding";

export const HASH_SIZE = 32;

/** A stored node: the hash of the complete subtree of 2^level leaves starting at index·2^level. */
export interface NodeRef {
  level: number;
  index: number;
}
export interface MerkleNode extends NodeRef {
  hash: Uint8Array;
}

export class MerkleProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MerkleProofError";
  }
}

const LEAF_PREFIX = new Uint8Array([0]);
const NODE_PREFIX = new Uint8Array([1]);

/** SHA-256(0x00 ‖ data). */
export function hashLeaf(data: Uint8Array | string): Uint8Array {
  return sha256Concat(LEAF_PREFIX, data);
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Concat(NODE_PREFIX, left, right);
}

/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = sha256Bytes(new Uint8Array(0));

// ---------------------------------------------------------------------------------------------
// Generation side (our own sizes, < 2^53).

function assertSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new MerkleProofError(`${what} must be a safe integer ≥ 0`);
}

/** Largest power of two strictly below n (n ≥ 2). */
function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The maximal aligned complete subtrees covering [a, b), left to right. */
export function rangeBlocks(a: number, b: number): NodeRef[] {
  const out: NodeRef[] = [];
  while (a < b) {
    let p = 1;
    let level = 0;
    while ((a === 0 || a % (p * 2) === 0) && a + p * 2 <= b) {
      p *= 2;
      level++;
    }
    out.push({ level, index: a / p });
    a += p;
  }
  return out;
}

/** RFC 9162 MTH of a range given its blocks' hashes (left to right): fold from the right. */
export function foldBlocks(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return EMPTY_ROOT;
  let h = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) h = hashChildren(hashes[i]!, h);
  return h;
}

/** A proof is a list of ranges whose MTHs, in order, are the proof hashes. */
export type ProofRanges = Array<[number, number]>;

/** RFC 9162 §2.1.3.1 PATH(m, D[n]) as ranges, bottom-up. */
export function inclusionRanges(m: number, n: number): ProofRanges {
  assertSize(m, "index");
  assertSize(n, "tree size");
  if (m >= n) throw new MerkleProofError(`index ${m} is not below tree size ${n}`);
  const out: ProofRanges = [];
  let offset = 0;
  let size = n;
  while (size > 1) {
    const k = largestPow2Below(size);
    if (m - offset < k) {
      out.push([offset + k, offset + size]);
      size = k;
    } else {
      out.push([offset, offset + k]);
      offset += k;
      size -= k;
    }
  }
  return out.reverse();
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]) as ranges (0 < m ≤ n; empty when m = n). */
export function consistencyRanges(m: number, n: number): ProofRanges {
  assertSize(m, "first size");
  assertSize(n, "second size");
  if (m === 0 || m > n) throw new MerkleProofError(`no consistency proof from ${m} to ${n}`);
  const out: ProofRanges = [];
  let offset = 0;
  let size = n;
  let mm = m;
  let whole = true;
  for (;;) {
    if (mm === size) {
      if (!whole) out.push([offset, offset + size]);
      break;
    }
    const k = largestPow2Below(size);
    if (mm <= k) {
      out.push([offset + k, offset + size]);
      size = k;
    } else {
      out.push([offset, offset + k]);
      mm -= k;
      offset += k;
      size -= k;
      whole = false;
    }
  }
  return out.reverse();
}

/** Source of stored node hashes (adapters batch the lookups). */
export type NodeReader = (refs: readonly NodeRef[]) => Promise<(Uint8Array | undefined)[]>;

export const nodeKey = (r: NodeRef): string => `${r.level}:${r.index}`;

/** Resolves ranges to their MTH with one batched node read; fails closed on a missing node. */
export async function resolveRanges(
  ranges: readonly [number, number][],
  read: NodeReader,
): Promise<Uint8Array[]> {
  const blocks = ranges.map(([a, b]) => rangeBlocks(a, b));
  const unique = new Map<string, NodeRef>();
  for (const bs of blocks) for (const r of bs) unique.set(nodeKey(r), r);
  const refs = [...unique.values()];
  const hashes = await read(refs);
  const byKey = new Map<string, Uint8Array>();
  refs.forEach((r, i) => {
    const h = hashes[i];
    if (h === undefined || h.length !== HASH_SIZE) {
      throw new MerkleProofError(`tree node ${nodeKey(r)} is missing`);
    }
    byKey.set(nodeKey(r), h);
  });
  return blocks.map((bs) => foldBlocks(bs.map((r) => byKey.get(nodeKey(r))!)));
}

/** Root hash of the first n leaves. */
export async function rootAt(n: number, read: NodeReader): Promise<Uint8Array> {
  assertSize(n, "tree size");
  if (n === 0) return EMPTY_ROOT;
  const [root] = await resolveRanges([[0, n]], read);
  return root!;
}

/**
 * The right edge of a growing tree: hashes of the maximal complete subtrees of [0, size), left to
 * right. Appending a leaf returns every node it completes, so an adapter can store all nodes.
 */
export class CompactRange {
  private constructor(
    private sizeValue: number,
    private readonly hashes: Uint8Array[],
  ) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** Rebuild from the block hashes of [0, size) (as stored, e.g. rangeBlocks(0, size)). */
  static from(size: number, hashes: readonly Uint8Array[]): CompactRange {
    assertSize(size, "tree size");
    if (
      hashes.length !== rangeBlocks(0, size).length ||
      hashes.some((h) => h.length !== HASH_SIZE)
    ) {
      throw new MerkleProofError("compact range does not match its size");
    }
    return new CompactRange(size, [...hashes]);
  }

  get size(): number {
    return this.sizeValue;
  }

  get frontier(): readonly Uint8Array[] {
    return this.hashes;
  }

  clone(): CompactRange {
    return new CompactRange(this.sizeValue, [...this.hashes]);
  }

  append(leaf: Uint8Array, out: MerkleNode[]): void {
    let h = leaf;
    let level = 0;
    let index = this.sizeValue;
    out.push({ level, index, hash: h });
    let s = this.sizeValue;
    while (s % 2 === 1) {
      h = hashChildren(this.hashes.pop()!, h);
      level++;
      index = Math.floor(index / 2);
      s = Math.floor(s / 2);
      out.push({ level, index, hash: h });
    }
    this.hashes.push(h);
    this.sizeValue++;
  }

  root(): Uint8Array {
    return foldBlocks(this.hashes);
  }
}

// ---------------------------------------------------------------------------------------------
// Verification side (bigint, hostile input).

type Index = number | bigint;

function big(x: Index, what: string): bigint {
  if (typeof x === "bigint") {
    if (x < 0n || x >= 1n << 64n) throw new MerkleProofError(`${what} out of range`);
    return x;
  }
  if (!Number.isSafeInteger(x) || x < 0)
    throw new MerkleProofError(`${what} must be an integer ≥ 0`);
  return BigInt(x);
}

const bitLen = (x: bigint): number => (x === 0n ? 0 : x.toString(2).length);

function onesCount(x: bigint): number {
  let c = 0;
  for (const ch of x.toString(2)) if (ch === "1") c++;
  return c;
}

function trailingZeros(x: bigint): number {
  if (x === 0n) return 64;
  let n = 0;
  while (((x >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

function checkProof(proof: readonly Uint8Array[] | null | undefined): readonly Uint8Array[] {
  const p = proof ?? [];
  for (const h of p) {
    if (h.length !== HASH_SIZE) throw new MerkleProofError("proof hash has the wrong size");
  }
  return p;
}

function chainInner(seed: Uint8Array, proof: readonly Uint8Array[], index: bigint): Uint8Array {
  let h = seed;
  proof.forEach((p, i) => {
    h = ((index >> BigInt(i)) & 1n) === 0n ? hashChildren(h, p) : hashChildren(p, h);
  });
  return h;
}

function chainBorderRight(seed: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  let h = seed;
  for (const p of proof) h = hashChildren(p, h);
  return h;
}

function matchRoot(calculated: Uint8Array, expected: Uint8Array): void {
  if (!equalBytes(calculated, expected))
    throw new MerkleProofError("calculated root does not match");
}

/** Root implied by an inclusion proof (RFC 9162 §2.1.3.2). Requires index < size. */
export function rootFromInclusionProof(
  index: Index,
  size: Index,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[] | null | undefined,
): Uint8Array {
  const i = big(index, "index");
  const n = big(size, "tree size");
  if (i >= n) throw new MerkleProofError(`index ${i} is not below tree size ${n}`);
  if (leafHash.length !== HASH_SIZE) throw new MerkleProofError("leaf hash has the wrong size");
  const p = checkProof(proof);
  const inner = bitLen(i ^ (n - 1n));
  const border = onesCount(i >> BigInt(inner));
  if (p.length !== inner + border) {
    throw new MerkleProofError(`wrong proof size ${p.length}, want ${inner + border}`);
  }
  return chainBorderRight(chainInner(leafHash, p.slice(0, inner), i), p.slice(inner));
}

/** Throws MerkleProofError unless `proof` shows leafHash at index in the tree with `root`. */
export function verifyInclusion(
  index: Index,
  size: Index,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[] | null | undefined,
  root: Uint8Array,
): void {
  matchRoot(rootFromInclusionProof(index, size, leafHash, proof), root);
}

function bitCeil(n: bigint): bigint {
  return n <= 1n ? 1n : 1n << BigInt(bitLen(n - 1n));
}

/** A subtree [start, end) is valid if start is a multiple of bit_ceil(end − start). */
function checkSubtree(start: bigint, end: bigint): void {
  if (start > end) throw new MerkleProofError("subtree start is after its end");
  if (start === 0n || start === end) return;
  const l = end - start;
  if (l > 1n << 63n) throw new MerkleProofError("subtree too large for a non-zero start");
  if ((start & (bitCeil(l) - 1n)) !== 0n) throw new MerkleProofError("subtree is not aligned");
}

/** Inclusion of a leaf in the subtree [start, end) with root `root`. */
export function verifySubtreeInclusion(
  index: Index,
  start: Index,
  end: Index,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[] | null | undefined,
  root: Uint8Array,
): void {
  const i = big(index, "index");
  const s = big(start, "start");
  const e = big(end, "end");
  checkSubtree(s, e);
  if (i < s || i >= e) throw new MerkleProofError("index outside the subtree");
  matchRoot(rootFromInclusionProof(i - s, e - s, leafHash, proof), root);
}

/** Root of the tree of size2 implied by a consistency proof from (size1, root1). */
export function rootFromConsistencyProof(
  size1: Index,
  size2: Index,
  proof: readonly Uint8Array[] | null | undefined,
  root1: Uint8Array,
): Uint8Array {
  const m = big(size1, "size1");
  const n = big(size2, "size2");
  const p = checkProof(proof);
  if (n < m) throw new MerkleProofError("size2 is below size1");
  if (m === 0n)
    throw new MerkleProofError("a consistency proof from the empty tree is meaningless");
  if (m === n) {
    if (p.length > 0) throw new MerkleProofError("sizes are equal but the proof is not empty");
    return root1;
  }
  if (p.length === 0) throw new MerkleProofError("empty proof");
  return rootFromSubtreeProof(0n, m, n, p, root1);
}

/** Throws MerkleProofError unless the tree (size2, root2) extends (size1, root1). */
export function verifyConsistency(
  size1: Index,
  size2: Index,
  proof: readonly Uint8Array[] | null | undefined,
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  matchRoot(rootFromConsistencyProof(size1, size2, proof, root1), root2);
}

/** Throws unless the subtree [start, end) with root subRoot sits in the tree (size, root). */
export function verifySubtreeConsistency(
  start: Index,
  end: Index,
  size: Index,
  proof: readonly Uint8Array[] | null | undefined,
  subRoot: Uint8Array,
  root: Uint8Array,
): void {
  const s = big(start, "start");
  const e = big(end, "end");
  const n = big(size, "size");
  const p = checkProof(proof);
  checkSubtree(s, e);
  if (n < e) throw new MerkleProofError("size is below the subtree end");
  if (s === e) {
    // An empty subtree is trivially contained; only its (empty) root and proof are checked.
    if (p.length > 0) throw new MerkleProofError("empty subtree with a non-empty proof");
    matchRoot(subRoot, EMPTY_ROOT);
    return;
  }
  if (s === 0n && n === e) {
    if (p.length > 0)
      throw new MerkleProofError("subtree is the whole tree but the proof is not empty");
    matchRoot(subRoot, root);
    return;
  }
  if (p.length === 0) throw new MerkleProofError("empty proof");
  matchRoot(rootFromSubtreeProof(s, e, n, p, subRoot), root);
}

function rootFromSubtreeProof(
  start: bigint,
  end: bigint,
  size: bigint,
  proof: readonly Uint8Array[],
  subRoot: Uint8Array,
): Uint8Array {
  if (end === size) {
    // The subtree's right edge is the tree's: only left siblings above it are needed.
    const level = bitLen((end - 1n) ^ start);
    const want = onesCount(start >> BigInt(level));
    if (proof.length !== want)
      throw new MerkleProofError(`wrong proof size ${proof.length}, want ${want}`);
    return chainBorderRight(subRoot, proof);
  }
  const forkLevel = bitLen((end - 1n) ^ (size - 1n));
  const shift = trailingZeros(end - start);
  let seed = proof[0]!;
  let pStart = 1;
  if (end - start === 1n << BigInt(shift)) {
    // A complete subtree: its root is the caller's, not repeated in the proof.
    seed = subRoot;
    pStart = 0;
  }
  const want = pStart + (forkLevel - shift) + onesCount((end - 1n) >> BigInt(forkLevel));
  if (proof.length !== want)
    throw new MerkleProofError(`wrong proof size ${proof.length}, want ${want}`);
  const rest = proof.slice(pStart);

  // Hash up to the subtree root twice: as of size `end` (must equal subRoot) and grown to `size`.
  const h = bitLen((end - 1n) ^ start);
  let sub = seed;
  let grown = seed;
  let i = 0;
  for (let lvl = shift; lvl < h; lvl++) {
    if (((end - 1n) >> BigInt(lvl)) & 1n) {
      const p = rest[i++];
      if (p === undefined) throw new MerkleProofError("proof too short");
      sub = hashChildren(p, sub);
      grown = hashChildren(p, grown);
    } else if (lvl < forkLevel) {
      const p = rest[i++];
      if (p === undefined) throw new MerkleProofError("proof too short");
      grown = hashChildren(grown, p);
    }
  }
  matchRoot(sub, subRoot);
  // The rest is an inclusion proof of the grown subtree root, one level-h node among size>>h.
  const sIndex = start >> BigInt(h);
  const sSize = ((size - 1n) >> BigInt(h)) + 1n;
  return rootFromInclusionProof(sIndex, sSize, grown, rest.slice(i));
}

/**
 * Nodes that retention may delete when the cut moves from oldStart to cut: every node inside
 * [0, cut) except the blocks of [0, cut), which stay as the frontier that later proofs and roots
 * are built from. (Nodes inside [0, oldStart) other than its blocks were deleted before.)
 */
export function* prunableNodes(oldStart: number, cut: number): Generator<NodeRef> {
  const keep = new Set(rangeBlocks(0, cut).map(nodeKey));
  for (const r of rangeBlocks(0, oldStart)) if (!keep.has(nodeKey(r))) yield r;
  for (let level = 0, width = 1; width <= cut; level++, width *= 2) {
    const last = Math.floor(cut / width) - 1;
    for (let i = Math.floor(oldStart / width); i <= last; i++) {
      const r = { level, index: i };
      if (!keep.has(nodeKey(r))) yield r;
    }
  }
}
