import { describe, expect, it } from "vitest";
import { utf8 } from "../../shared/encoding";
import { createContentDigest, verifyContentDigest } from "../../shared/httpsig";

// RFC 9530 §2 examples for the body {"hello": "world"}.
const BODY = utf8('{"hello": "world"}');
const SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
const SHA512 =
  "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";

describe("Content-Digest (RFC 9530)", () => {
  it("creates the RFC's sha-256 and sha-512 values", () => {
    expect(createContentDigest(BODY)).toBe(SHA256);
    expect(createContentDigest(BODY, "sha-512")).toBe(SHA512);
  });

  it("verifies sha-256, sha-512, both, and ignores unknown algorithms beside them", () => {
    expect(verifyContentDigest(SHA256, BODY)).toEqual({ ok: true, algorithms: ["sha-256"] });
    expect(verifyContentDigest(SHA512, BODY)).toEqual({ ok: true, algorithms: ["sha-512"] });
    expect(verifyContentDigest(`${SHA512}, ${SHA256}`, BODY)).toMatchObject({ ok: true });
    expect(verifyContentDigest(`md5=:AAAA:, ${SHA256}`, BODY)).toMatchObject({ ok: true });
  });

  it("rejects a digest of another body", () => {
    expect(verifyContentDigest(SHA256, utf8('{"hello": "World"}'))).toMatchObject({
      ok: false,
      reason: "mismatch",
    });
    // One good and one bad member: every supported member must match.
    const bad512 = createContentDigest(utf8("other"), "sha-512");
    expect(verifyContentDigest(`${SHA256}, ${bad512}`, BODY)).toMatchObject({
      ok: false,
      reason: "mismatch",
    });
  });

  it("rejects malformed fields and fields with no supported algorithm", () => {
    expect(verifyContentDigest("sha-256=X48E9q", BODY)).toMatchObject({
      ok: false,
      reason: "malformed",
    });
    expect(verifyContentDigest('sha-256="abc"', BODY)).toMatchObject({
      ok: false,
      reason: "malformed",
    });
    expect(verifyContentDigest("md5=:AAAA:", BODY)).toMatchObject({
      ok: false,
      reason: "unsupported",
    });
    expect(verifyContentDigest("", BODY)).toMatchObject({ ok: false, reason: "unsupported" });
    expect(verifyContentDigest(`x=:${"A".repeat(2000)}:`, BODY)).toMatchObject({
      ok: false,
      reason: "malformed",
    });
  });
});
