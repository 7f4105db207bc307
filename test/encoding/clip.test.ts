// clip() cuts text for audit records and results without splitting a surrogate pair: a lone
// surrogate is refused by the API and cannot be canonicalised (docs/governance.md, bounds).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clip } from "../../shared/encoding";

describe("clip", () => {
  it("keeps short strings and never cuts a pair in half", () => {
    expect(clip("abc", 5)).toBe("abc");
    expect(clip("ab😀c", 3)).toBe("ab");
    expect(clip("ab😀c", 4)).toBe("ab😀");
    expect(clip("😀", 1)).toBe("");
    expect(clip("abc", 0)).toBe("");
  });

  it("for any well-formed string: a well-formed prefix of at most max code units", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 64 }), fc.nat(300), (s, max) => {
        const out = clip(s, max);
        expect(s.startsWith(out)).toBe(true);
        expect(out.length).toBeLessThanOrEqual(max);
        expect(out.length).toBeGreaterThanOrEqual(Math.min(s.length, max) - 1);
        expect(out.isWellFormed()).toBe(true);
      }),
    );
  });
});
