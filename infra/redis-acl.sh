#!/usr/bin/env bash
# Creates (or resets to the same rules: idempotent) one Redis ACL user per Sigil component, with
# the least privileges each needs (docs/deployment.md "Least privilege at the data layer"):
#
#   sigil-api      the API: its prefix's keys `<prefix>:*` (keys, policies, pins, nonces, audit,
#                  approvals, job records) and the queue's `{<prefix>}:*`; their channels; the
#                  commands of those data types, scripts, MULTI, pub/sub, WAIT; CONFIG GET (the
#                  audit log checks AOF at start) and INFO (health, BullMQ's version check).
#   sigil-worker   a worker host: only the queue's `{<prefix>}:*` keys and channels, read-only
#                  job records `<prefix>:job:{id}` and the cancel channel, and the commands BullMQ runs (its Lua scripts by EVALSHA, blocking pops, INFO, CLIENT
#                  SETNAME). Redis refuses it (NOPERM) keys, policies, pins, nonces and audit data.
#   sigil-metrics  read-only: INFO and PING, no key at all (a Redis exporter).
#
# Scripts run with the caller's ACL, so a worker cannot reach other keys through EVAL either.
# Dangerous commands (FLUSHALL, CONFIG SET, KEYS, DEBUG, SHUTDOWN, ...) are refused to all three.
#
# Passwords: SIGIL_REDIS_API_PASSWORD / _WORKER_ / _METRICS_ if set; otherwise a random one is
# created once in $SIGIL_REDIS_SECRETS_DIR/<user>.password (mode 600) and reused on every later run.
# Redis stores only its SHA-256 (`#<hex>`), and it never appears on a command line.
# Admin connection: REDIS_URL (host and port) and REDISCLI_AUTH (the admin's password, if any).
# The `default` user is left as it is: disable it yourself once every client has its own user.
set -euo pipefail

url=${REDIS_URL:-redis://127.0.0.1:6379}
hostport=${url#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
host=${hostport%%:*}
port=${hostport##*:}
[ "$port" = "$hostport" ] && port=6379
prefix=${SIGIL_REDIS_PREFIX:-sigil}
secrets=${SIGIL_REDIS_SECRETS_DIR:-/var/lib/sigil/redis-acl}

say() { printf '[sigil infra] %s\n' "$*"; }
die() { printf '[sigil infra] ERROR: %s\n' "$*" >&2; exit 1; }
cli() { redis-cli -h "$host" -p "$port" --no-auth-warning "$@"; }

case "$prefix" in *[!A-Za-z0-9._-]*) die "SIGIL_REDIS_PREFIX may hold only letters, digits and . _ -" ;; esac
cli PING >/dev/null 2>&1 || die "Redis at $host:$port does not answer (REDIS_URL, REDISCLI_AUTH)"

password_for() {
  local name=$1 var=$2 file
  if [ -n "${!var:-}" ]; then
    printf '%s' "${!var}"
    return
  fi
  file="$secrets/$name.password"
  if [ ! -s "$file" ]; then
    (umask 077 && mkdir -p "$secrets" && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    say "created the $name password in $file"
  fi
  cat "$file"
}
hash_of() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# Glob patterns: a literal prefix, then *. Braces are not special in Redis globs.
app_keys=("~$prefix:*" "~{$prefix}:*" "&$prefix:*" "&{$prefix}:*")
# Plus, read-only, the job records' cancel mark and the cancel channel (platform/node/cancel.ts):
# a worker checks a job was not cancelled before it starts its container.
queue_keys=("~{$prefix}:*" "&{$prefix}:*" "%R~$prefix:job:{*}" "&$prefix:jobs:cancel")
data_cmds=(-@all +@read +@write +@keyspace +@string +@hash +@list +@set +@sortedset +@stream
  +@bitmap +@scripting +@transaction +@pubsub +@blocking +@connection -@dangerous
  +info +time +client\|setname +client\|getname +client\|id)

setuser() {
  local name=$1 pass=$2
  shift 2
  cli ACL SETUSER "$name" reset on "#$(hash_of "$pass")" "$@" >/dev/null ||
    die "ACL SETUSER $name failed"
}

setuser sigil-api "$(password_for api SIGIL_REDIS_API_PASSWORD)" \
  "${app_keys[@]}" "${data_cmds[@]}" +config\|get +wait
setuser sigil-worker "$(password_for worker SIGIL_REDIS_WORKER_PASSWORD)" \
  "${queue_keys[@]}" "${data_cmds[@]}"
setuser sigil-metrics "$(password_for metrics SIGIL_REDIS_METRICS_PASSWORD)" \
  resetkeys resetchannels -@all +info +ping +hello +auth +client\|setname

# Persist when Redis has an ACL file; otherwise the users live until Redis restarts (rerun this).
if [ -n "$(cli CONFIG GET aclfile 2>/dev/null | sed -n 2p)" ]; then
  cli ACL SAVE >/dev/null && say "ACL saved to the aclfile"
else
  say "no aclfile configured: users last until Redis restarts (infra/deploy/redis.conf sets one)"
fi
say "ACL users sigil-api, sigil-worker, sigil-metrics ready on $host:$port (prefix $prefix)"
