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

  it("a failed JWK Set fetch throws and is not throttled: the next lookup fetches again", async () => {
    const service = await jwk("service");
    let calls = 0;
    const resolve = serviceKeyResolver({
      fetchJwks: async () => {
        calls++;
        if (calls === 1) throw new Error("503 audit trail unavailable");
        return { keys: [service] };
      },
      minRefreshMs: 60_000,
    });
    await expect(resolve(service.kid as string)).rejects.toThrow(/503/);
    expect(await resolve(service.kid as string)).toBeInstanceOf(Uint8Array);
    expect(calls).toBe(2);
    // A kid still unknown after a fetch that succeeded waits for the interval.
    expect(await resolve("not-a-kid")).toBeUndefined();
    expect(calls).toBe(2);
  });

  it("lookups made while the first fetch is under way wait for it", async () => {
    const service = await jwk("service");
    let release: () => void = () => undefined;
    let calls = 0;
    const resolve = serviceKeyResolver({
      fetchJwks: async () => {
        calls++;
        await new Promise<void>((r) => {
          release = r;
        });
        return { keys: [service] };
      },
    });
    const both = Promise.all([resolve(service.kid as string), resolve(service.kid as string)]);
    await new Promise((r) => setTimeout(r, 10));
    release();
    const [a, b] = await both;
    expect(a).toBeInstanceOf(Uint8Array);
    expect(b).toBeInstanceOf(Uint8Array);
    expect(calls).toBe(1);
  });
});
