// Real Redis for tests (started by infra/setup.sh). Each test file gets its own key prefix
// so files can run in parallel against one server.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll } from "vitest";

export const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export function testPrefix(name: string): string {
  return `sigiltest:${name}:${randomUUID().slice(0, 8)}:`;
}

export function connectRedis(): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: 3, lazyConnect: false });
}

/**
 * Deletes every key under a prefix (SCAN, never KEYS). A prefix ending in ":" also covers the
 * BullMQ queue's hash-tagged form of it: Sigil's queue under prefix `p` keeps its keys at `{p}:…`.
 */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  const patterns = [`${escapeGlob(prefix)}*`];
  if (prefix.endsWith(":")) patterns.push(`{${escapeGlob(prefix.slice(0, -1))}}:*`);
  for (const pattern of patterns) {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  }
}

// SCAN's MATCH is a glob: a "*", "?", "[" or backslash in a prefix must match only itself.
const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, "\\$&");

/** A test file's connection and key prefix; its keys are deleted when the file ends. */
export function redisForFile(name: string): { redis: Redis; prefix: string } {
  const redis = connectRedis();
  const prefix = testPrefix(name);
  afterAll(async () => {
    await dropPrefix(redis, prefix);
    redis.disconnect();
  });
  return { redis, prefix };
}
