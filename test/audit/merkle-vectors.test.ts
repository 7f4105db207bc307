// Every transparency-dev Merkle vector under test/vectors/merkle: happy paths must verify,
// every wantErr case must fail.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installNodeSha256 } from "../../platform/node/native-hash";
import {
  verifyConsistency,
  verifyInclusion,
  verifySubtreeConsistency,
  verifySubtreeInclusion,
} from "../../shared/audit/merkle";
import { fromBase64, installSha256 } from "../../shared/encoding";
import { vectorPath } from "../support/vectors";

type Raw = Record<string, unknown>;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith(".json") ? [p] : [];
  });
}

// Sizes near 2^64 do not survive JSON.parse as numbers: keep long integers as bigint.
function load(path: string): Raw {
  const text = readFileSync(path, "utf8").replace(/(:\s*)(\d{16,})/g, '$1"#big:$2"');
  return JSON.parse(text, (_k, v) =>
    typeof v === "string" && v.startsWith("#big:") ? BigInt(v.slice(5)) : v,
  ) as Raw;
}

const b64 = (s: unknown): Uint8Array => fromBase64(s as string);
const proofOf = (p: unknown): Uint8Array[] | null => (p === null ? null : (p as string[]).map(b64));
const idx = (v: unknown): number | bigint => v as number | bigint;

const kinds = {
  inclusion: (v: Raw) =>
    verifyInclusion(
      idx(v.leafIdx),
      idx(v.treeSize),
      b64(v.leafHash),
      proofOf(v.proof),
      b64(v.root),
    ),
  consistency: (v: Raw) =>
    verifyConsistency(idx(v.size1), idx(v.size2), proofOf(v.proof), b64(v.root1), b64(v.root2)),
  subtreeinclusion: (v: Raw) =>
    verifySubtreeInclusion(
      idx(v.leafIdx),
      idx(v.start),
      idx(v.end),
      b64(v.leafHash),
      proofOf(v.proof),
      b64(v.root),
    ),
  subtreeconsistency: (v: Raw) =>
    verifySubtreeConsistency(
      idx(v.start),
      idx(v.end),
      idx(v.size),
      proofOf(v.proof),
      b64(v.root1),
      b64(v.root2),
    ),
} as const;

// Under the pure-JS default and under the node:crypto SHA-256 the Node entries install.
for (const impl of ["pure-JS", "node:crypto"] as const) {
  describe(`SHA-256: ${impl}`, () => {
    beforeAll(() => (impl === "node:crypto" ? installNodeSha256() : installSha256(undefined)));
    afterAll(() => installSha256(undefined));
    for (const [kind, check] of Object.entries(kinds)) {
      const files = walk(vectorPath("merkle", kind)).sort();
      describe(`merkle vectors: ${kind} (${files.length})`, () => {
        it("has vectors", () => expect(files.length).toBeGreaterThan(10));
        for (const file of files) {
          const v = load(file);
          const name = file.slice(file.indexOf(`merkle/${kind}/`) + 7);
          it(`${name}: ${v.wantErr ? "rejects" : "accepts"}`, () => {
            if (v.wantErr) expect(() => check(v)).toThrow();
            else expect(() => check(v)).not.toThrow();
          });
        }
      });
    }
  });
}
