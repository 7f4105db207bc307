// /health on Node reports Redis's memory headroom (docs/governance.md "Quotas"): Redis runs with a
// ceiling and noeviction, so near the ceiling writes (audit, jobs, nonces) are about to be refused.
// Against a private redis-server on a free loopback port, so the shared one is never filled.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisChecks } from "../../functions/node/health";
import { freePort } from "../support/edge";
import { type PrivateRedis, spawnPrivateRedis } from "../support/private-redis";

let server: PrivateRedis | undefined;
let redis: Redis;
const dir = mkdtempSync(join(tmpdir(), "sigil-redis-headroom-"));

beforeAll(async () => {
  const port = await freePort();
  server = spawnPrivateRedis(
    dir,
    ["--port", String(port)],
    ["--maxmemory-policy", "noeviction", "--maxmemory", "8mb"],
  );
  redis = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on("error", () => undefined); // refused until the server listens: retried below
  for (let i = 0; i < 100; i++) {
    try {
      await redis.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
afterAll(async () => {
  redis?.disconnect();
  server?.stop("SIGTERM");
});

const memoryCheck = () => {
  const c = redisChecks(redis).find((h) => h.name === "redis-memory");
  if (!c) throw new Error("no redis-memory check");
  expect(c.required).toBe(true);
  return c.check();
};

describe("redis-memory health check", () => {
  it("reports the headroom under the ceiling", async () => {
    const r = await memoryCheck();
    expect(r.ok).toBe(true);
    expect(r.detail).toMatch(/MiB of 8\.0 MiB used, \d+\.\d% headroom$/);
  });

  it("is down when less than a tenth is left", async () => {
    const chunk = "x".repeat(64 * 1024);
    for (let i = 0; i < 200; i++) {
      const info = await redis.info("memory");
      const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
      if (used > 0.93 * 8 * 1024 * 1024) break;
      await redis.set(`fill:${i}`, chunk);
    }
    const r = await memoryCheck();
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/below 10%/);
  });

  it("is down without a ceiling", async () => {
    await redis.config("SET", "maxmemory", "0");
    const r = await memoryCheck();
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/no memory ceiling/);
  });
});
