import fc from "fast-check";
// RFC 8785 (JCS) and base64url, as wrapped by shared/encoding.
import { describe, expect, it } from "vitest";
import {
  canonicalBytes,
  canonicalJson,
  fromBase64Url,
  toBase64Url,
  toHex,
} from "../../shared/encoding";

const f64 = (hex: string): number =>
  new DataView(Uint8Array.from(Buffer.from(hex, "hex")).buffer).getFloat64(0);

describe("RFC 8785 canonical JSON", () => {
  it("Appendix B: number serialization", () => {
    const cases: [string, string][] = [
      ["0000000000000000", "0"],
      ["8000000000000000", "0"],
      ["0000000000000001", "5e-324"],
      ["8000000000000001", "-5e-324"],
      ["7fefffffffffffff", "1.7976931348623157e+308"],
      ["ffefffffffffffff", "-1.7976931348623157e+308"],
      ["4340000000000000", "9007199254740992"],
      ["c340000000000000", "-9007199254740992"],
      ["4430000000000000", "295147905179352830000"],
      ["44b52d02c7e14af5", "9.999999999999997e+22"],
      ["44b52d02c7e14af6", "1e+23"],
      ["44b52d02c7e14af7", "1.0000000000000001e+23"],
      ["444b1ae4d6e2ef4e", "999999999999999700000"],
      ["444b1ae4d6e2ef4f", "999999999999999900000"],
      ["444b1ae4d6e2ef50", "1e+21"],
      ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"],
      ["3eb0c6f7a0b5ed8d", "0.000001"],
      ["41b3de4355555553", "333333333.3333332"],
      ["41b3de4355555554", "333333333.33333325"],
      ["41b3de4355555555", "333333333.3333333"],
      ["41b3de4355555556", "333333333.3333334"],
      ["41b3de4355555557", "333333333.33333343"],
      ["becbf647612f3696", "-0.0000033333333333333333"],
      ["43143ff3c1cb0959", "1424953923781206.2"],
    ];
    for (const [bits, text] of cases) expect(canonicalJson(f64(bits)), bits).toBe(text);
  });

  it("Appendix B: NaN and Infinity have no canonical form", () => {
    for (const bits of ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"]) {
      expect(() => canonicalJson(f64(bits))).toThrow();
      expect(() => canonicalJson({ a: f64(bits) })).toThrow();
    }
  });

  it("§3.2.2: the sample object", () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    expect(canonicalJson(JSON.parse(input))).toBe(
      String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
    );
  });

  it("§3.2.3: property sorting by UTF-16 code units", () => {
    const input = String.raw`{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }`;
    // Keys in output order (Object.keys would hoist "1": JS orders integer-like keys first).
    const keys = [...canonicalJson(JSON.parse(input)).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) =>
      JSON.parse(`"${m[1]}"`),
    );
    expect(keys).toEqual(["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]);
    expect(canonicalJson(JSON.parse(input))).toBe(
      `{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}`,
    );
  });

  it("§3.2.3 Appendix: UTF-8 bytes of the canonical form", () => {
    expect(toHex(canonicalBytes({ b: "€", a: [1, { d: true, c: null }] }))).toBe(
      Buffer.from('{"a":[1,{"c":null,"d":true}],"b":"€"}', "utf8").toString("hex"),
    );
  });

  it("is independent of insertion order and nesting", () => {
    expect(canonicalJson({ z: 1, a: { y: [3, 2], b: "x" } })).toBe(
      canonicalJson({ a: { b: "x", y: [3, 2] }, z: 1 }),
    );
    expect(canonicalJson({ z: 1, a: { y: [3, 2], b: "x" } })).toBe(
      '{"a":{"b":"x","y":[3,2]},"z":1}',
    );
  });
});

describe("base64url (RFC 4648 §5)", () => {
  it("round-trips every length 0..66 and uses the URL alphabet without padding", () => {
    for (let n = 0; n <= 66; n++) {
      const b = crypto.getRandomValues(new Uint8Array(n));
      const s = toBase64Url(b);
      expect(s).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(toHex(fromBase64Url(s))).toBe(toHex(b));
    }
    expect(toBase64Url(Uint8Array.of(0xfb, 0xff))).toBe("-_8");
  });

  it("matches Node's base64url for every input (small inputs take the table path)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2100 }), (b) => {
        expect(toBase64Url(b)).toBe(Buffer.from(b).toString("base64url"));
      }),
      { numRuns: 400 },
    );
  });

  it("rejects padding, the standard alphabet, bad lengths and non-canonical tails", () => {
    for (const s of ["-_8=", "+/8", "A", "AAAAA", "A B", "-_9", "AB"]) {
      expect(() => fromBase64Url(s), s).toThrow();
    }
  });
});
