// Lua for the job record: each state change and its feed event happen in one atomic step, so the
// record and the SSE feed never disagree, and "finish once" holds across API nodes.
// KEYS[1] = record hash, KEYS[2] = event stream (same hash tag, so one cluster slot).

const TERMINAL = `local terminal = {succeeded=true, failed=true, timeout=true, oom=true, killed=true, rejected=true, error=true}`;

/** ARGV: base JSON, now, queued event data, ttl ms, max events. → 1 created, 0 existed. */
export const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'base', ARGV[1], 'status', 'queued', 'attempts', '0', 'updatedAt', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'queued', 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

/**
 * ARGV: attempt, workerKid, "1" when the caller proved it holds the queue's lock for that attempt.
 * → claimed | duplicate | finished | missing | refused:<why>. An attempt is claimed once.
 */
export const CLAIM = `
${TERMINAL}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
if terminal[st] then return 'finished' end
local field = 'claim:' .. ARGV[1]
local cur = redis.call('HGET', KEYS[1], field)
if cur == ARGV[2] then return 'duplicate' end
if cur then return 'refused:claimed-by-other' end
if ARGV[3] ~= '1' then return 'refused:no-lock' end
redis.call('HSET', KEYS[1], field, ARGV[2])
return 'claimed'`;

/** ARGV: attempt, workerId, workerKid, at, started event data, max events. */
export const START = `
${TERMINAL}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
if terminal[st] then return 'finished' end
if redis.call('HGET', KEYS[1], 'claim:' .. ARGV[1]) ~= ARGV[3] then return 'refused:not-claimant' end
local cancel = redis.call('HGET', KEYS[1], 'cancelRequested')
if cancel then
  -- Cancelled while running and its worker was lost: the retry must not run it; it ends here.
  redis.call('HSET', KEYS[1], 'status', 'killed', 'finishedAt', ARGV[4], 'updatedAt', ARGV[4],
    'reason', cancel)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'finished', 'data',
    cjson.encode({status = 'killed', reason = cancel}))
  return 'finished'
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if tonumber(ARGV[1]) <= attempts then return 'duplicate' end
redis.call('HSET', KEYS[1], 'status', 'running', 'attempts', ARGV[1], 'workerId', ARGV[2],
  'workerKid', ARGV[3], 'lastStartedAt', ARGV[4], 'updatedAt', ARGV[4])
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', 'started', 'data', ARGV[5])
return 'started'`;

/**
 * ARGV: resultHash ("" for none), status, result JSON ("" for none), at, reason, ttl ms,
 * max events, claimed attempt and worker key id ("" for a system failure), then (type, data)
 * pairs to append. → stored | duplicate | conflict | missing | refused:not-claimant.
 */
export const FINISH = `
${TERMINAL}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if ARGV[8] ~= '' and redis.call('HGET', KEYS[1], 'claim:' .. ARGV[8]) ~= ARGV[9] then
  return 'refused:not-claimant'
end
local st = redis.call('HGET', KEYS[1], 'status')
if terminal[st] then
  local prev = redis.call('HGET', KEYS[1], 'resultHash') or ''
  if ARGV[1] ~= '' and prev == ARGV[1] then return 'duplicate' end
  if ARGV[1] == '' and prev == '' and st == ARGV[2] then return 'duplicate' end
  return 'conflict'
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'finishedAt', ARGV[4], 'updatedAt', ARGV[4])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'resultHash', ARGV[1], 'result', ARGV[3]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[5]) end
for i = 10, #ARGV, 2 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'type', ARGV[i], 'data', ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 'stored'`;

/**
 * A held job (docs/governance.md "Approvals"): created awaiting_approval with its signed envelope
 * and queue priority kept in the record, not queued. ARGV: base JSON, now, event data, ttl ms,
 * max events, signed envelope JSON, approval id, priority. → 1 created, 0 existed.
 */
export const HOLD = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'base', ARGV[1], 'status', 'awaiting_approval', 'attempts', '0',
  'updatedAt', ARGV[2], 'envelope', ARGV[6], 'approvalId', ARGV[7], 'priority', ARGV[8])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'awaiting_approval', 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`;

/**
 * The compare-and-set of an approval's release: awaiting_approval → queued happens once, whoever
 * calls. A job released before and never started answers `requeued`, so a caller that died
 * between this and the queue add can be followed by one that adds it (a no-op when it landed).
 * ARGV: now, queued event data, max events. → released | requeued | unchanged | missing.
 */
export const RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
if st == 'awaiting_approval' then
  redis.call('HSET', KEYS[1], 'status', 'queued', 'releasedAt', ARGV[1], 'updatedAt', ARGV[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', 'queued', 'data', ARGV[2])
  return 'released'
end
if st == 'queued' and redis.call('HEXISTS', KEYS[1], 'releasedAt') == 1
  and tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') == 0 then
  return 'requeued'
end
return 'unchanged'`;

/**
 * A held job ends rejected (denied or expired approval), only from awaiting_approval.
 * ARGV: now, reason, finished event data, ttl ms, max events. → rejected | unchanged | missing.
 */
export const REJECT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HGET', KEYS[1], 'status') ~= 'awaiting_approval' then return 'unchanged' end
redis.call('HSET', KEYS[1], 'status', 'rejected', 'finishedAt', ARGV[1], 'updatedAt', ARGV[1],
  'reason', ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'finished', 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 'rejected'`;

/**
 * Cancel (docs/http-api.md "Cancel"), decided against finish in one atomic step: a queued or held
 * job ends `killed` here; a running one gets `cancelRequested` and its worker is told on the
 * cancel channel (it kills the container and reports a signed `killed` result, the one final
 * state); a finished job is left alone. ARGV: now, reason, finished event data, ttl ms, max
 * events, cancel channel, jobId. → cancelled | killing | finished | missing.
 */
export const CANCEL = `
${TERMINAL}
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local st = redis.call('HGET', KEYS[1], 'status')
if terminal[st] then return 'finished' end
if st == 'queued' or st == 'awaiting_approval' then
  redis.call('HSET', KEYS[1], 'status', 'killed', 'finishedAt', ARGV[1], 'updatedAt', ARGV[1],
    'reason', ARGV[2], 'cancelRequested', ARGV[2])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'type', 'finished', 'data', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return 'cancelled'
end
if redis.call('HSETNX', KEYS[1], 'cancelRequested', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1])
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 'killing'`;
