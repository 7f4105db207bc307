// Lua scripts of the Redis audit adapter. Every write to a chain goes through COMMIT, which is
// fenced twice: the caller must hold the sequencer lock (its random token) and the stored head must
// still be at the size the batch was sealed on. A deposed leader can therefore never fork the chain.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

export interface Script {
  name: string;
  src: string;
  sha: string;
}

function script(name: string, src: string): Script {
  return { name, src, sha: createHash("sha1").update(src).digest("hex") };
}

/** KEYS: lock, head · ARGV: token, leaseMs → {1, size, start, hash, ts, frontier} | {0, pttl} */
export const ACQUIRE = script(
  "acquire",
  `
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not ok then
  if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else
    return {0, redis.call('PTTL', KEYS[1])}
  end
end
local h = redis.call('HMGET', KEYS[2], 'size', 'start', 'hash', 'ts', 'frontier')
return {1, h[1] or '0', h[2] or '0', h[3] or '', h[4] or '', h[5] or ''}
`,
);

/**
 * KEYS: lock, head, events, sums, nodes, ids
 * ARGV: token, expectedSize, newSize, newHash, newTs, frontier, leaseMs, release(0|1), channel,
 *       n, n × (index, json, sums, eventId), m, m × (nodeField, hash)
 */
export const COMMIT = script(
  "commit",
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED sequencer lock lost') end
local size = tonumber(redis.call('HGET', KEYS[2], 'size') or '0')
if size ~= tonumber(ARGV[2]) then return redis.error_reply('FENCED chain head moved') end
local n = tonumber(ARGV[10])
local p = 11
local evs, sums, ids, nodes = {}, {}, {}, {}
for i = 1, n do
  local idx = ARGV[p]
  evs[#evs + 1] = idx; evs[#evs + 1] = ARGV[p + 1]
  sums[#sums + 1] = idx; sums[#sums + 1] = ARGV[p + 2]
  ids[#ids + 1] = ARGV[p + 3]; ids[#ids + 1] = idx
  p = p + 4
end
local m = tonumber(ARGV[p]); p = p + 1
for i = 1, m do
  nodes[#nodes + 1] = ARGV[p]; nodes[#nodes + 1] = ARGV[p + 1]
  p = p + 2
end
local function hset(key, t)
  for i = 1, #t, 1000 do redis.call('HSET', key, unpack(t, i, math.min(i + 999, #t))) end
end
hset(KEYS[3], evs); hset(KEYS[4], sums); hset(KEYS[6], ids); hset(KEYS[5], nodes)
redis.call('HSET', KEYS[2], 'size', ARGV[3], 'hash', ARGV[4], 'ts', ARGV[5], 'frontier', ARGV[6])
if ARGV[8] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[9], '1')
else
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
end
return 1
`,
);

/** KEYS: lock · ARGV: token, channel */
export const RELEASE = script(
  "release",
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '1')
  return 1
end
return 0
`,
);

/** KEYS: cp · ARGV: expectedSize ('' = none), size, json → 1 | 0 */
export const SAVE_CHECKPOINT = script(
  "save-checkpoint",
  `
local cur = redis.call('HGET', KEYS[1], 'size')
if (cur == false and ARGV[1] == '') or (cur ~= false and cur == ARGV[1]) then
  redis.call('HSET', KEYS[1], 'size', ARGV[2], 'json', ARGV[3])
  return 1
end
return 0
`,
);

/** KEYS: head, anchor · ARGV: cut, anchorJson → previous start */
export const PRUNE = script(
  "prune",
  `
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or '0')
local size = tonumber(redis.call('HGET', KEYS[1], 'size') or '0')
local cut = tonumber(ARGV[1])
if cut <= start or cut > size then return redis.error_reply('RANGE cut outside the retained chain') end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'start', ARGV[1])
return start
`,
);

/** EVALSHA with a fallback to EVAL when the script cache was flushed. Buffers in, Buffers out. */
export async function runScript(
  redis: Redis,
  s: Script,
  keys: readonly string[],
  args: readonly (string | Buffer | number)[],
): Promise<unknown> {
  try {
    return await redis.callBuffer("EVALSHA", [s.sha, keys.length, ...keys, ...args]);
  } catch (e) {
    if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
    return redis.callBuffer("EVAL", [s.src, keys.length, ...keys, ...args]);
  }
}
