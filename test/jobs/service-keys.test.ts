// A worker trusts envelopes only from service and gateway keys. The JWK Set also publishes worker
// keys (they sign results); a worker key must never be accepted as an envelope signer.
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair, publicJwk } from "../../shared/crypto";
import { serviceKeyResolver } from "../../worker/jobs/keys";

async function jwk(role: string, status = "active") {
  const kp = await generateEd25519KeyPair();
  return { ...publicJwk(kp.publicKey), role, status };
}

describe("worker: which keys may sign envelopes", () => {
  it("accepts service and gateway keys from the JWK Set, refuses worker and revoked keys", async () => {
    const [service, gateway, worker, revoked] = await Promise.all([
      jwk("service"),
      jwk("gateway"),
      jwk("worker"),
      jwk("service", "revoked"),
    ]);
    const resolve = serviceKeyResolver({
      fetchJwks: async () => ({ keys: [service, gateway, worker, revoked] }),
    });
    expect(await resolve(service.kid as string)).toBeInstanceOf(Uint8Array);
    expect(await resolve(gateway.kid as string)).toBeInstanceOf(Uint8Array);
    expect(await resolve(worker.kid as string)).toBeUndefined();
    expect(await resolve(revoked.kid as string)).toBeUndefined();
  });
});
