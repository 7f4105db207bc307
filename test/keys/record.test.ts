import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../shared/crypto";
import {
  fromStored,
  KeyRegistryError,
  newRecord,
  revocation,
  rotation,
  rotationDue,
  toStored,
  usableForNewRequest,
  validAt,
} from "../../shared/keys";

const T0 = 1_750_000_000_000;

describe("key validity predicates", () => {
  it("usableForNewRequest: active and inside [notBefore, expiresAt)", async () => {
    const { publicKey } = await generateEd25519KeyPair();
    const r = newRecord({
      role: "agent",
      subject: "a",
      publicKey,
      createdAt: T0,
      notBefore: T0 + 10,
      expiresAt: T0 + 100,
    });
    expect(usableForNewRequest(r, T0 + 9)).toBe(false);
    expect(usableForNewRequest(r, T0 + 10)).toBe(true);
    expect(usableForNewRequest(r, T0 + 99)).toBe(true);
    expect(usableForNewRequest(r, T0 + 100)).toBe(false); // past the rotation interval
    expect(validAt(r, T0 + 99)).toBe(true);
    expect(validAt(r, T0 + 100)).toBe(false);
    expect(validAt(r, Number.NaN)).toBe(false);
    expect(rotationDue(r, T0 + 89, 10)).toBe(false);
    expect(rotationDue(r, T0 + 90, 10)).toBe(true);
  });

  it("rotation keeps the old window closed at rotatedAt and carries the lifetime over", async () => {
    const a = await generateEd25519KeyPair();
    const b = await generateEd25519KeyPair();
    const r = newRecord({
      role: "worker",
      subject: "w",
      publicKey: a.publicKey,
      createdAt: T0,
      expiresAt: T0 + 1000,
    });
    const [old, next] = rotation(r, b.publicKey, T0 + 400);
    expect(old).toMatchObject({ status: "rotated", rotatedAt: T0 + 400, rotatedTo: next.kid });
    expect(next).toMatchObject({
      status: "active",
      rotatedFrom: r.kid,
      notBefore: T0 + 400,
      expiresAt: T0 + 1400,
    });
    expect(validAt(old, T0 + 399)).toBe(true);
    expect(validAt(old, T0 + 400)).toBe(false);
    expect(usableForNewRequest(old, T0 + 399)).toBe(false); // status decides for new requests
    expect(() => rotation(old, b.publicKey, T0 + 500)).toThrow(KeyRegistryError);
  });

  it("revocation takes the earliest end; no revocation in the future", async () => {
    const { publicKey } = await generateEd25519KeyPair();
    const r = newRecord({ role: "agent", subject: "a", publicKey, createdAt: T0 });
    const rev = revocation(r, T0 + 50, { effectiveAt: T0 + 20, reason: "leaked" });
    expect(validAt(rev, T0 + 19)).toBe(true);
    expect(validAt(rev, T0 + 20)).toBe(false);
    expect(() => revocation(r, T0 + 50, { effectiveAt: T0 + 51 })).toThrow(KeyRegistryError);
    expect(() => revocation(rev, T0 + 60)).toThrow(KeyRegistryError);
  });

  it("stored form round-trips and is self-certifying", async () => {
    const a = await generateEd25519KeyPair();
    const b = await generateEd25519KeyPair();
    const r = newRecord({ role: "tool", subject: "t", publicKey: a.publicKey, createdAt: T0 });
    expect(fromStored(JSON.parse(JSON.stringify(toStored(r))))).toEqual(r);
    const swapped = { ...toStored(r), publicKey: Buffer.from(b.publicKey).toString("base64url") };
    expect(() => fromStored(swapped)).toThrow(KeyRegistryError);
    expect(() => fromStored({ ...toStored(r), status: "pending" })).toThrow(KeyRegistryError);
    expect(() => fromStored({ ...toStored(r), extra: true })).toThrow(KeyRegistryError);
  });
});
