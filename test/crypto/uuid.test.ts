// UUIDv7 ids from the shared random pool (shared/crypto/uuid.ts).
import { describe, expect, it } from "vitest";
import { idRandom16, uuidV7 } from "../../shared/crypto";

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("uuidV7", () => {
  it("gives well-formed, distinct v7 ids whose time field does not go back", () => {
    const ids = Array.from({ length: 10_000 }, () => uuidV7());
    for (const id of ids) expect(id).toMatch(V7);
    expect(new Set(ids).size).toBe(ids.length);
    const ms = ids.map((id) => Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16));
    for (let i = 1; i < ms.length; i++) expect(ms[i]!).toBeGreaterThanOrEqual(ms[i - 1]!);
  });

  it("never hands the same pool bytes out twice, across refills", () => {
    const seen = new Set<string>();
    const draws = Array.from({ length: 1000 }, () => idRandom16()); // ~4 pools of 4 KiB
    for (const d of draws) {
      expect(d.length).toBe(16);
      seen.add(Buffer.from(d).toString("hex"));
    }
    expect(seen.size).toBe(draws.length);
    // Earlier draws are not overwritten by later ones (each refill is a fresh buffer).
    const first = Buffer.from(draws[0]!).toString("hex");
    for (let i = 0; i < 1000; i++) idRandom16();
    expect(Buffer.from(draws[0]!).toString("hex")).toBe(first);
  });
});
