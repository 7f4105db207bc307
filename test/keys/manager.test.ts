import { describe, expect, it } from "vitest";
import { CryptoError, verifyEd25519 } from "../../shared/crypto";
import { utf8 } from "../../shared/encoding";
import {
  KeyManager,
  KeyRegistryError,
  MemoryKeyRegistry,
  MemorySecretStore,
  MIN_SCRYPT_N,
  SoftwareKeyProvider,
  validAt,
} from "../../shared/keys";

const DAY = 86_400_000;

function setup(intervalDays = 30) {
  let now = 1_750_000_000_000;
  const store = new MemorySecretStore();
  const registry = new MemoryKeyRegistry();
  const provider = new SoftwareKeyProvider({
    secret: "s3cret",
    store,
    scrypt: { N: MIN_SCRYPT_N, r: 8, p: 1 },
  });
  const manager = new KeyManager({
    registry,
    provider,
    rotationIntervalDays: intervalDays,
    now: () => now,
  });
  return {
    manager,
    registry,
    provider,
    store,
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

describe("KeyManager + SoftwareKeyProvider", () => {
  it("creates a key that signs, stores it encrypted, and emits key.created", async () => {
    const { manager, store, now } = setup();
    const { record, event } = await manager.createKey({ role: "worker", subject: "node-1" });
    expect(event).toMatchObject({
      type: "key.created",
      kid: record.kid,
      role: "worker",
      subject: "node-1",
    });
    expect(record.expiresAt).toBe(now() + 30 * DAY);
    expect(await store.list()).toEqual([record.kid]);
    const signer = await manager.signer(record.kid);
    const sig = await signer.sign(utf8("result"));
    expect(await verifyEd25519(record.publicKey, utf8("result"), sig)).toBe(true);
    expect((await manager.currentKey("worker", "node-1"))?.kid).toBe(record.kid);
  });

  it("a fresh provider with the same secret and store recovers the key; a wrong secret cannot", async () => {
    const { manager, store } = setup();
    const { record } = await manager.createKey({ role: "service", subject: "api" });
    const again = new SoftwareKeyProvider({ secret: "s3cret", store });
    const sig = await (await again.getSigner(record.kid)).sign(utf8("m"));
    expect(await verifyEd25519(record.publicKey, utf8("m"), sig)).toBe(true);
    const wrong = new SoftwareKeyProvider({ secret: "other", store });
    await expect(wrong.getSigner(record.kid)).rejects.toBeInstanceOf(CryptoError);
    await expect(again.getSigner("unknown-kid")).rejects.toBeInstanceOf(CryptoError);
  });

  it("rotation: new key signs, old signatures still verify by time, old key serves nothing new", async () => {
    const { manager, registry, provider, advance, now } = setup();
    const { record: old } = await manager.createKey({ role: "agent", subject: "agent-7" });
    const oldSig = await (await manager.signer(old.kid)).sign(utf8("before"));
    const signedAt = now();
    advance(DAY);
    const { record: next, event } = await manager.rotate(old.kid);
    expect(event).toMatchObject({ type: "key.rotated", kid: next.kid, previousKid: old.kid });
    expect(next.expiresAt).toBe(now() + 30 * DAY);
    const retired = (await registry.get(old.kid))!;
    expect(validAt(retired, signedAt)).toBe(true);
    expect(await verifyEd25519(retired.publicKey, utf8("before"), oldSig)).toBe(true);
    await expect(manager.signer(old.kid)).rejects.toBeInstanceOf(CryptoError);
    expect(await provider.listKeys()).toEqual([next.kid]); // old private half destroyed
    expect((await manager.currentKey("agent", "agent-7"))?.kid).toBe(next.kid);
  });

  it("revocation stops signing and destroys the private key", async () => {
    const { manager, provider } = setup();
    const { record } = await manager.createKey({ role: "admin", subject: "ops" });
    const { event } = await manager.revoke(record.kid, { reason: "left the company" });
    expect(event).toMatchObject({
      type: "key.revoked",
      kid: record.kid,
      reason: "left the company",
    });
    await expect(manager.signer(record.kid)).rejects.toBeInstanceOf(CryptoError);
    expect(await provider.listKeys()).toEqual([]);
  });

  it("enforces key_rotation_interval_days: an unrotated key stops serving; rotateDue rotates ahead", async () => {
    const { manager, advance } = setup(10);
    const { record: a } = await manager.createKey({ role: "service", subject: "api" });
    const { record: b } = await manager.createKey({ role: "service", subject: "envelopes" });
    advance(2 * DAY);
    expect(await manager.dueForRotation(7)).toEqual([]);
    advance(2 * DAY); // 4 days left
    expect((await manager.dueForRotation(7)).map((r) => r.kid).sort()).toEqual(
      [a.kid, b.kid].sort(),
    );
    const { rotated, failed } = await manager.rotateDue(7);
    expect(failed).toEqual([]);
    expect(rotated.map((c) => c.record.rotatedFrom).sort()).toEqual([a.kid, b.kid].sort());
    // A key nobody rotates expires at the interval.
    const { record: c } = await manager.createKey({ role: "agent", subject: "forgotten" });
    advance(10 * DAY - 1);
    await expect(manager.signer(c.kid)).resolves.toBeDefined();
    advance(1);
    await expect(manager.signer(c.kid)).rejects.toBeInstanceOf(CryptoError);
  });

  it("session keys live under a usable parent and never outlive it", async () => {
    const { manager, advance } = setup(1);
    const { record: parent } = await manager.createKey({ role: "agent", subject: "a" });
    advance(DAY - 60_000);
    const { record: session } = await manager.createSessionKey(parent.kid);
    expect(session).toMatchObject({ parent: parent.kid, role: "agent", subject: "a" });
    expect(session.expiresAt).toBe(parent.expiresAt);
    await manager.revoke(parent.kid);
    await expect(manager.createSessionKey(parent.kid)).rejects.toBeInstanceOf(KeyRegistryError);
  });

  it("external tool keys are registered, not generated", async () => {
    const { manager, provider } = setup();
    await expect(manager.createKey({ role: "tool", subject: "t" })).rejects.toBeInstanceOf(
      KeyRegistryError,
    );
    const pk = (await import("../../shared/crypto")).generateEd25519KeyPair;
    const { publicKey } = await pk();
    const { record, event } = await manager.registerExternalKey({
      role: "tool",
      subject: "github-mcp",
      publicKey,
    });
    expect(event.type).toBe("key.created");
    expect(await provider.listKeys()).toEqual([]);
    await expect(manager.signer(record.kid)).rejects.toBeInstanceOf(CryptoError);
  });

  it("refuses a bad rotation interval", () => {
    const registry = new MemoryKeyRegistry();
    const provider = new SoftwareKeyProvider({ secret: "x" });
    for (const d of [0, -1, Number.NaN, 10_000]) {
      expect(() => new KeyManager({ registry, provider, rotationIntervalDays: d })).toThrow(
        KeyRegistryError,
      );
    }
  });
});
