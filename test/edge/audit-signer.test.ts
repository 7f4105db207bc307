// The production AuditObject's signer: it signs only with an active "service" key from the
// KeysObject, decrypting it there (no private key crosses RPC), and refuses any other key.
import { afterAll, describe, expect, it } from "vitest";
import { KEYS_OBJECT } from "../../functions/edge/constants";
import { EDGE_SCRYPT } from "../../functions/edge/keys/secret";
import type { Result } from "../../functions/edge/rpc";
import { type AuditLogPort, AuditService, verifyExport } from "../../shared/audit";
import { verifyEd25519 } from "../../shared/crypto";
import {
  KeyManager,
  type KeyRegistry,
  type SecretStore,
  SoftwareKeyProvider,
  validAt,
} from "../../shared/keys";
import { disposeWorkerd, freshName, remotePort, workerd } from "./support/workerd";

afterAll(disposeWorkerd);

// The production object reads the singleton KeysObject ("keys"), as the edge composition does.
const registry = remotePort<KeyRegistry>("keys", KEYS_OBJECT);
const secrets = remotePort<SecretStore>("secrets", KEYS_OBJECT);

async function manager(): Promise<KeyManager> {
  const r = (await (
    await workerd()
  ).call({
    port: "keys-hook",
    name: KEYS_OBJECT,
    method: "masterSecret",
    args: [],
  })) as Result<string>;
  if (!r.ok) throw new Error(r.error.message);
  const provider = new SoftwareKeyProvider({
    secret: r.value,
    store: secrets,
    scrypt: EDGE_SCRYPT,
  });
  return new KeyManager({ registry, provider });
}

const log = (kid: string): AuditLogPort => {
  const chain = "default";
  return remotePort<AuditLogPort>("audit-prod", freshName("chain"), {
    chain,
    kid,
    props: { chain },
  });
};

describe("AuditObject service signer", () => {
  it("signs with the service key decrypted from the KeysObject; the chain verifies with its public key", async () => {
    const m = await manager();
    const service = (await m.createKey({ role: "service", subject: "sigil" })).record;
    const signer = await m.signer(service.kid);
    const audit = new AuditService({
      log: log(service.kid),
      signer,
      verify: verifyEd25519,
      origin: "sigil.test/edge",
      keys: async (kid, ts) => {
        const r = await registry.get(kid);
        return r ? { publicKey: r.publicKey, validAt: validAt(r, Date.parse(ts)) } : undefined;
      },
    });
    const acks = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        audit.append({ eventType: "tool.invoked", details: { i } }),
      ),
    );
    expect(new Set(acks.map((a) => a.index)).size).toBe(30);
    expect(acks.every((a) => a.kid === service.kid)).toBe(true);
    expect(await audit.verify()).toEqual({ valid: true, checked: 30 });
    const lines: string[] = [];
    for await (const l of audit.export()) lines.push(l);
    const keys = async (kid: string) =>
      kid === service.kid ? { publicKey: service.publicKey, validAt: true } : undefined;
    expect(await verifyExport(lines, { keys, verify: verifyEd25519 })).toMatchObject({
      valid: true,
      checked: 30,
    });
  });

  it("refuses to sign with a key that is not an active service key", async () => {
    const m = await manager();
    const agentKey = (await m.createKey({ role: "agent", subject: "agent-1" })).record;
    await expect(
      log(agentKey.kid).append({ eventType: "tool.invoked", details: {} }),
    ).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringMatching(/not an active service key/),
    });
    const retired = (await m.createKey({ role: "service", subject: "sigil" })).record;
    await registry.revoke(retired.kid, Date.now());
    await expect(
      log(retired.kid).append({ eventType: "tool.invoked", details: {} }),
    ).rejects.toMatchObject({
      code: "unavailable",
    });
    await expect(
      log("no-such-kid").append({ eventType: "tool.invoked", details: {} }),
    ).rejects.toMatchObject({
      code: "unavailable",
    });
  });
});
