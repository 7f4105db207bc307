// The SHA-256 a Node entry installs must give the pure-JS digests, byte for byte, for every input
// shape the core hashes (strings with any code points, byte arrays, several parts).
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { installNodeSha256 } from "../../platform/node/native-hash";
import { hashChildren, hashLeaf } from "../../shared/audit";
import { installSha256, sha256Bytes, sha256Concat, toHex } from "../../shared/encoding";

const part = fc.oneof(
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: "binary" }),
  fc.uint8Array(),
);

describe("installed SHA-256", () => {
  afterEach(() => installSha256(undefined));

  it("node:crypto and the pure-JS default agree on every input", () => {
    fc.assert(
      fc.property(fc.array(part, { maxLength: 4 }), (parts) => {
        installSha256(undefined);
        const js = [toHex(sha256Concat(...parts)), toHex(hashLeaf(parts.map(String).join("")))];
        installNodeSha256();
        const native = [toHex(sha256Concat(...parts)), toHex(hashLeaf(parts.map(String).join("")))];
        expect(native).toEqual(js);
      }),
      { numRuns: 500 },
    );
  });

  it("gives the known digests (FIPS 180-2 'abc', RFC 6962 empty leaf)", () => {
    installNodeSha256();
    expect(toHex(sha256Bytes("abc"))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(toHex(hashLeaf(new Uint8Array(0)))).toBe(
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    );
    const native = hashChildren(hashLeaf("a"), hashLeaf("b"));
    installSha256(undefined);
    expect(native).toEqual(hashChildren(hashLeaf("a"), hashLeaf("b")));
  });
});
