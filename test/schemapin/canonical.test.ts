import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromHex, toHex } from "../../shared/encoding";
import {
  canonicalizeSchema,
  checkCanonicalization,
  derToP1363,
  p1363ToDer,
  SchemaPinError,
} from "../../shared/schemapin";

describe("schemapin-v1 canonical form", () => {
  it("sorts keys recursively, keeps array order, compact separators, raw UTF-8", () => {
    expect(canonicalizeSchema({ b: 1, a: { d: [3, 1, { z: "é", y: null }], c: true } })).toBe(
      '{"a":{"c":true,"d":[3,1,{"y":null,"z":"é"}]},"b":1}',
    );
  });

  it("matches Python json.dumps(sort_keys, compact, ensure_ascii=False) on escapes", () => {
    // Strings checked against CPython 3: json.dumps(v, ensure_ascii=False, separators=(',',':'), sort_keys=True)
    expect(canonicalizeSchema({ s: 'q"\\\n\t\u0001\u007f\u2028😀' })).toBe(
      '{"s":"q\\"\\\\\\n\\t\\u0001\u007f\u2028😀"}',
    );
    expect(canonicalizeSchema({ n: [0, -5, 9007199254740991, 0.5, 1.25e-3] })).toBe(
      '{"n":[0,-5,9007199254740991,0.5,0.00125]}',
    );
  });

  const code = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return (e as SchemaPinError).code;
    }
  };

  it("refuses values where the reference SDKs disagree", () => {
    expect(code(() => canonicalizeSchema({ x: 1e-7 }))).toBe("canonicalization_unsupported");
    expect(code(() => canonicalizeSchema({ x: 2 ** 60 }))).toBe("canonicalization_unsupported");
    expect(code(() => canonicalizeSchema({ "😀": 1 }))).toBe("canonicalization_unsupported");
    expect(code(() => canonicalizeSchema({ x: "\ud800" }))).toBe("schema_canonicalization_failed");
    expect(code(() => canonicalizeSchema({ x: Number.NaN }))).toBe(
      "schema_canonicalization_failed",
    );
    expect(code(() => canonicalizeSchema({ x: undefined }))).toBe("schema_canonicalization_failed");
    expect(code(() => canonicalizeSchema({ x: new Date(0) }))).toBe(
      "schema_canonicalization_failed",
    );
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(code(() => canonicalizeSchema({ deep }))).toBe("schema_canonicalization_failed");
  });

  it("accepts only absent or schemapin-v1 canonicalization names", () => {
    expect(() => checkCanonicalization(undefined)).not.toThrow();
    expect(() => checkCanonicalization("schemapin-v1")).not.toThrow();
    expect(code(() => checkCanonicalization("jcs"))).toBe("canonicalization_unsupported");
  });

  it("is a fixed point: parse(canonical) canonicalizes to itself", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
        let c: string;
        try {
          c = canonicalizeSchema(v);
        } catch (e) {
          return e instanceof SchemaPinError;
        }
        return canonicalizeSchema(JSON.parse(c)) === c;
      }),
    );
  });
});

describe("strict DER <-> P1363", () => {
  const good =
    "3045022100b292a619339f6e567a305c951c0dcbcc42d16e47f219f9e98e76e09d8770b34a02200177e60492c5a8242f76f07bfe3661bde59ec2a17ce5bd2dab2abebdf89a62e2";

  it("round-trips a canonical signature", () => {
    expect(toHex(p1363ToDer(derToP1363(fromHex(good))))).toBe(good);
  });

  it.each([
    ["long-form sequence length", `3081${good.slice(2)}`],
    ["trailing byte", `${good.slice(0, 2)}46${good.slice(4)}00`],
    ["extra leading zero in r", `3046022200${good.slice(8)}`],
    ["negative s", good.replace("02200177", "02208177")],
    ["r = 0", "3006020100020101"],
    ["non-minimal r (0x00 0x01)", "300702020001020101"],
    [
      "s >= n",
      `3026020101022100${"ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"}`,
    ],
    ["wrong tag", `31${good.slice(2)}`],
  ])("rejects %s", (_name, hex) => {
    expect(() => derToP1363(fromHex(hex))).toThrow(SchemaPinError);
  });
});
