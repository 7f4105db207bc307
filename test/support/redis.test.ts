// The test helper every Redis test cleans up with: it must delete all of a prefix's keys, the
// BullMQ queue's `{prefix}:` ones included, and nothing outside the prefix.
import { afterAll, expect, it } from "vitest";
import { connectRedis, dropPrefix, testPrefix } from "./redis";

const redis = connectRedis();
afterAll(() => redis.disconnect());

it("dropPrefix deletes a prefix's keys and its queue's, and leaves its neighbours", async () => {
  const p = testPrefix("drop"); // ends in ":"
  const base = p.slice(0, -1);
  const mine = [`${p}a`, `${p}b:c`, `{${base}}:sigil-jobs:meta`];
  // Neighbours: a longer prefix sharing the start, and a glob character that must stay literal.
  const others = [`${base}x:a`, `{${base}x}:sigil-jobs:meta`, `${p.replace(/:$/, "?")}a`];
  for (const k of [...mine, ...others]) await redis.set(k, "1", "EX", 60);
  await dropPrefix(redis, p);
  expect(await redis.exists(...mine)).toBe(0);
  expect(await redis.exists(...others)).toBe(others.length);
  await redis.del(...others);
});

it("dropPrefix treats glob characters in the prefix literally", async () => {
  const p = `${testPrefix("glob")}[ab]*:`;
  const literal = `${p}k`;
  const wouldMatchAsGlob = `${p.replace("[ab]*", "a-anything")}k`;
  await redis.set(literal, "1", "EX", 60);
  await redis.set(wouldMatchAsGlob, "1", "EX", 60);
  await dropPrefix(redis, p);
  expect(await redis.exists(literal)).toBe(0);
  expect(await redis.exists(wouldMatchAsGlob)).toBe(1);
  await redis.del(wouldMatchAsGlob);
});
