// Lua scripts of the Redis audit adapter. Every write to a chain goes through COMMIT, which is
// fenced twice: the caller must hold the sequencer lock (its random token) and the stored head must
// still be at the size the batch was sealed on. A deposed leader can therefore never fork the chain.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { nodeKey, type SealedBatch, type StoredRecord } from "../../../../shared/audit";

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
 * KEYS: lock, head, events, nodes, then one request-nonce key per guarded event
 * ARGV: token, expectedSize, newSize, newHash, newTs, frontier, leaseMs, release(0|1), channel,
 *       n, values ("\n"-joined: each event's stored value, checksums then canonical JSON),
 *       nodeFields (","-joined), nodeHashes (concatenated, 32 each),
 *       guard TTLs in seconds (","-joined, one per nonce key), guard positions in the batch (same)
 * → 1, or {0, position, ...} when nonces were already used (then nothing is written).
 * A nonce key is set (EX ttl) with its batch, so an event and its request's nonce land together.
 * Events take indexes expectedSize .. expectedSize+n-1. The batch travels as a few packed strings
 * rather than several arguments per event: encoding hundreds of arguments was a fifth of the
 * leader's CPU. Canonical JSON escapes control characters, so "\n" cannot occur inside a value.
 */
export const COMMIT = script(
  "commit",
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('FENCED sequencer lock lost') end
local size = tonumber(redis.call('HGET', KEYS[2], 'size') or '0')
if size ~= tonumber(ARGV[2]) then return redis.error_reply('FENCED chain head moved') end
local n = tonumber(ARGV[10])
local values = ARGV[11]
if tonumber(ARGV[3]) ~= size + n then return redis.error_reply('BATCH malformed') end
local evs, nodes = {}, {}
local pos = 1
for i = 0, n - 1 do
  local stop = string.find(values, '\\n', pos, true)
  if (stop == nil) ~= (i == n - 1) then return redis.error_reply('BATCH malformed') end
  stop = stop or (#values + 1)
  evs[#evs + 1] = string.format('%d', size + i); evs[#evs + 1] = string.sub(values, pos, stop - 1)
  pos = stop + 1
end
local hashes, h = ARGV[13], 0
for field in string.gmatch(ARGV[12], '[^,]+') do
  nodes[#nodes + 1] = field; nodes[#nodes + 1] = string.sub(hashes, h * 32 + 1, h * 32 + 32)
  h = h + 1
end
if h * 32 ~= #hashes then return redis.error_reply('BATCH malformed') end
local ttls, positions = {}, {}
for t in string.gmatch(ARGV[14], '[^,]+') do ttls[#ttls + 1] = t end
for p in string.gmatch(ARGV[15], '[^,]+') do positions[#positions + 1] = tonumber(p) end
if #ttls ~= #KEYS - 4 or #positions ~= #ttls then return redis.error_reply('BATCH malformed') end
local used = {}
for i = 1, #ttls do
  if redis.call('EXISTS', KEYS[4 + i]) == 1 then used[#used + 1] = positions[i] end
end
if #used > 0 then return {0, unpack(used)} end
local function hset(key, t)
  for i = 1, #t, 1000 do redis.call('HSET', key, unpack(t, i, math.min(i + 999, #t))) end
end
hset(KEYS[3], evs); hset(KEYS[4], nodes)
redis.call('HSET', KEYS[2], 'size', ARGV[3], 'hash', ARGV[4], 'ts', ARGV[5], 'frontier', ARGV[6])
for i = 1, #ttls do redis.call('SET', KEYS[4 + i], '1', 'EX', ttls[i]) end
if ARGV[8] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[9], '1')
else
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
end
return 1
`,
);

/** COMMIT's ARGV for a sealed batch that extends a chain of `expectedSize` events. */
export function commitArgs(
  o: { token: string; leaseMs: number; release: boolean; channel: string },
  expectedSize: number,
  s: SealedBatch,
  value: (r: StoredRecord) => string,
  guards: readonly { position: number; ttlSeconds: number }[] = [],
): (string | Buffer | number)[] {
  return [
    o.token,
    expectedSize,
    s.next.size,
    s.next.headHash,
    s.next.lastTimestamp ?? "",
    Buffer.concat(
      s.next.range.frontier.map((h) => Buffer.from(h.buffer, h.byteOffset, h.byteLength)),
    ),
    o.leaseMs,
    o.release ? "1" : "0",
    o.channel,
    s.events.length,
    s.records.map(value).join("\n"),
    s.nodes.map(nodeKey).join(","),
    Buffer.concat(
      s.nodes.map((x) => Buffer.from(x.hash.buffer, x.hash.byteOffset, x.hash.byteLength)),
    ),
    guards.map((g) => Math.ceil(g.ttlSeconds)).join(","),
    guards.map((g) => g.position).join(","),
  ];
}

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
