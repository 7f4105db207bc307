#!/usr/bin/env bash
# Installs (Debian) and starts the Redis that BullMQ and the audit trail use; idempotent.
#
# Persistence: AOF with `appendfsync always`. An acknowledged audit event must survive a power
# loss, not only a process crash; `everysec` could lose up to a second of acknowledged events.
# Redis group-commits the fsync once per event-loop turn, and Sigil's audit sequencer writes a
# whole batch per turn, so the fsync cost is paid per batch, not per event (see README numbers).
# SIGIL_REDIS_APPENDFSYNC=everysec trades that for latency: an ack then survives a Redis crash
# but not a host power loss (up to ~1 s lost). The README gives both measured side by side.
# `maxmemory-policy noeviction`: BullMQ requires it, and an audit log must never be evicted.
# `maxmemory`: a ceiling, so a flood fills Redis (refused writes, fail closed, /health says so)
# rather than the host (the OOM killer). SIGIL_REDIS_MAXMEMORY (bytes, or 512mb, 2gb...) sets it;
# by default half the host's memory, at most 1 GiB, and never below what Redis already uses.
set -euo pipefail

url=${REDIS_URL:-redis://127.0.0.1:6379}
hostport=${url#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
host=${hostport%%:*}
port=${hostport##*:}
[ "$port" = "$hostport" ] && port=6379
data_dir=${SIGIL_REDIS_DIR:-/var/lib/sigil/redis}
fsync=${SIGIL_REDIS_APPENDFSYNC:-always}
case "$fsync" in always | everysec) ;; *) echo "SIGIL_REDIS_APPENDFSYNC must be always or everysec" >&2; exit 1 ;; esac

say() { printf '[sigil infra] %s\n' "$*"; }
die() { printf '[sigil infra] ERROR: %s\n' "$*" >&2; exit 1; }

cli() { redis-cli -h "$host" -p "$port" "$@"; }

# The ceiling in bytes: SIGIL_REDIS_MAXMEMORY, else min(1 GiB, half of MemTotal).
ceiling() {
  local want=${SIGIL_REDIS_MAXMEMORY:-}
  if [ -n "$want" ]; then
    case "$want" in
      *[kK][bB]) echo $((${want%??} * 1024)) ;;
      *[mM][bB]) echo $((${want%??} * 1024 * 1024)) ;;
      *[gG][bB]) echo $((${want%??} * 1024 * 1024 * 1024)) ;;
      *[!0-9]* | '') die "SIGIL_REDIS_MAXMEMORY must be bytes or a number with kb, mb or gb" ;;
      *) echo "$want" ;;
    esac
    return
  fi
  local half gib=$((1024 * 1024 * 1024))
  half=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null || echo 2097152) * 1024 / 2))
  [ "$half" -lt "$gib" ] && echo "$half" || echo "$gib"
}

ensure_settings() {
  # Applied to a running server too, so a Redis started by someone else gets the same guarantees.
  local current
  current=$(cli CONFIG GET appendonly | tail -n 1)
  [ "$current" = "yes" ] || cli CONFIG SET appendonly yes >/dev/null
  [ "$(cli CONFIG GET appendfsync | tail -n 1)" = "$fsync" ] || cli CONFIG SET appendfsync "$fsync" >/dev/null
  [ "$(cli CONFIG GET maxmemory-policy | tail -n 1)" = "noeviction" ] ||
    cli CONFIG SET maxmemory-policy noeviction >/dev/null
  # A ceiling someone set is kept unless SIGIL_REDIS_MAXMEMORY asks for another; none gets ours.
  # Never below what is in use (with noeviction that would refuse every write at once).
  local max used want
  max=$(cli CONFIG GET maxmemory | tail -n 1)
  if [ "$max" = "0" ] || [ -n "${SIGIL_REDIS_MAXMEMORY:-}" ]; then
    want=$(ceiling)
    used=$(cli INFO memory | awk -F: '/^used_memory:/ {print $2}' | tr -d '\r')
    if [ "$want" -lt $((used * 2)) ]; then
      say "maxmemory $want is under twice the $used bytes in use; using $((used * 2))"
      want=$((used * 2))
    fi
    [ "$max" = "$want" ] || cli CONFIG SET maxmemory "$want" >/dev/null
  fi
}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "redis-server is not installed and I cannot install it (need root and apt-get).
  Install it by hand: sudo apt-get install redis-server
  or point REDIS_URL at a Redis >= 6.2 with appendonly yes and maxmemory-policy noeviction."
  fi
  say "installing redis-server (apt)"
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock || true)" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } ||
    die "apt-get install redis-server failed"
fi

if cli PING >/dev/null 2>&1; then
  ensure_settings
  say "redis up at $host:$port (AOF appendfsync $fsync, noeviction, maxmemory $(cli CONFIG GET maxmemory | tail -n 1))"
  exit 0
fi

case "$host" in
  127.0.0.1 | localhost | ::1) ;;
  *) die "Redis at $host:$port does not answer, and it is not local, so I will not start one." ;;
esac

mkdir -p "$data_dir"
say "starting redis-server on $host:$port (data in $data_dir)"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$data_dir" \
  --appendonly yes --appendfsync "$fsync" --maxmemory-policy noeviction --maxmemory "$(ceiling)" \
  --protected-mode yes --logfile /var/log/sigil-redis.log --save ""
for _ in $(seq 1 100); do
  cli PING >/dev/null 2>&1 && break
  sleep 0.1
done
cli PING >/dev/null 2>&1 || die "redis-server did not answer within 10 s; see /var/log/sigil-redis.log:
$(tail -n 20 /var/log/sigil-redis.log 2>/dev/null)"
ensure_settings
say "redis up at $host:$port (AOF appendfsync $fsync, noeviction, maxmemory $(cli CONFIG GET maxmemory | tail -n 1))"
