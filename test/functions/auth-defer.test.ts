// authenticate's deferNonce on real Redis: a route that ends without taking the nonce claim (a 400,
// say) still has the nonce reserved afterwards, so its replay is a 401; and when the nonce store
// is down at that moment the answer is a 503, as it is when the nonce is reserved up front.
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { type AuthFailure, type AuthKey, authenticate } from "../../functions/middleware/auth";
import { onError } from "../../functions/middleware/errors";
import { RedisReplayCache } from "../../functions/node/stores/replay-redis";
import { Problem } from "../../functions/problem";
import { router } from "../../functions/router";
import { verifyEd25519 } from "../../shared/crypto";
import { type ReplayCache, signRequest } from "../../shared/httpsig";
import { silentLogger } from "../../shared/log";
import { redisForFile, redisUrl } from "../support/redis";
import { newKey } from "../support/targets";

const { redis, prefix } = redisForFile("auth-defer");

async function appWith(replay: ReplayCache) {
  const key = await newKey();
  const rejected: AuthFailure[] = [];
  const app = router();
  app.use(
    "/v1/*",
    authenticate({
      resolveKey: async (kid): Promise<AuthKey | { status: "unknown" }> =>
        kid === key.kid
          ? { status: "active", publicKey: key.publicKey, kid, role: "agent", subject: "a" }
          : { status: "unknown" },
      verify: verifyEd25519,
      replay,
      maxSkewSeconds: 300,
      onRejected: async (f) => {
        rejected.push(f);
      },
      deferNonce: () => true,
    }),
  );
  // Never takes the claim: it refuses every request before any effect.
  app.post("/v1/evaluate", () => {
    throw new Problem(400, "validation", "Invalid request");
  });
  app.onError(onError(silentLogger));
  const url = "http://sigil.test/v1/evaluate";
  const body = '{"action":1}';
  const headers = {
    "content-type": "application/json",
    ...(await signRequest(
      { method: "POST", url, headers: { "content-type": "application/json" }, body },
      key.signer,
      { keyid: key.kid },
    )),
  } as Record<string, string>;
  const send = () => app.request(url, { method: "POST", headers, body });
  return { send, rejected };
}

describe("authenticate with deferNonce", () => {
  it("reserves an untaken nonce after the route; the replay is a 401, audited", async () => {
    const { send, rejected } = await appWith(new RedisReplayCache(redis, { prefix }));
    expect((await send()).status).toBe(400);
    expect(rejected).toHaveLength(0);
    const again = await send();
    expect(again.status).toBe(401);
    expect(((await again.json()) as { type: string }).type).toMatch(/\/replay$/);
    expect(rejected.map((f) => f.code)).toEqual(["replay"]);
  });

  it("answers 503 when the nonce store fails at that point", async () => {
    // A real client that never connected and queues nothing: every command fails at once.
    const down = new Redis(redisUrl, { lazyConnect: true, enableOfflineQueue: false });
    try {
      const { send } = await appWith(new RedisReplayCache(down, { prefix }));
      const r = await send();
      expect(r.status).toBe(503);
      expect(((await r.json()) as { type: string }).type).toMatch(/\/unavailable$/);
    } finally {
      down.disconnect();
    }
  });
});
