// Wycheproof ECDSA P-256 / SHA-256 (DER): the raw verify primitive must give the expected result
// for every vector, including BER/non-canonical encodings (rejected) and edge-case keys.
import { describe, expect, it } from "vitest";
import { fromHex } from "../../shared/encoding";
import { parseSpki, verifyEcdsaP256Der } from "../../shared/schemapin";
import { readVectorJson } from "../support/vectors";

interface Vector {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: "valid" | "invalid" | "acceptable";
}
interface Group {
  publicKeyDer: string;
  tests: Vector[];
}
const file = readVectorJson<{ numberOfTests: number; testGroups: Group[] }>(
  "wycheproof",
  "ecdsa_secp256r1_sha256_test.json",
);

describe("Wycheproof ecdsa_secp256r1_sha256 (DER)", () => {
  const all = file.testGroups.flatMap((g) => g.tests.map((t) => ({ g, t })));

  it("covers every vector in the file", () => {
    expect(all.length).toBe(file.numberOfTests);
    expect(all.some(({ t }) => t.result === "valid")).toBe(true);
    expect(all.some(({ t }) => t.result === "invalid")).toBe(true);
  });

  it("gives the expected result for each vector", async () => {
    const wrong: string[] = [];
    for (const { g, t } of all) {
      const key = parseSpki(fromHex(g.publicKeyDer));
      const ok = await verifyEcdsaP256Der(key, fromHex(t.msg), fromHex(t.sig));
      // No "acceptable" vectors in this file; if one appears, both answers are allowed.
      if (t.result !== "acceptable" && ok !== (t.result === "valid")) {
        wrong.push(`tc ${t.tcId} (${t.comment}): got ${ok}, want ${t.result}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
