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

ensure_settings() {
  # Applied to a running server too, so a Redis started by someone else gets the same guarantees.
  local current
  current=$(cli CONFIG GET appendonly | tail -n 1)
  [ "$current" = "yes" ] || cli CONFIG SET appendonly yes >/dev/null
  [ "$(cli CONFIG GET appendfsync | tail -n 1)" = "$fsync" ] || cli CONFIG SET appendfsync "$fsync" >/dev/null
  [ "$(cli CONFIG GET maxmemory-policy | tail -n 1)" = "noeviction" ] ||
    cli CONFIG SET maxmemory-policy noeviction >/dev/null
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
  say "redis up at $host:$port (AOF appendfsync $fsync, noeviction)"
  exit 0
fi

case "$host" in
  127.0.0.1 | localhost | ::1) ;;
  *) die "Redis at $host:$port does not answer, and it is not local, so I will not start one." ;;
esac

mkdir -p "$data_dir"
say "starting redis-server on $host:$port (data in $data_dir)"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --dir "$data_dir" \
  --appendonly yes --appendfsync "$fsync" --maxmemory-policy noeviction \
  --protected-mode yes --logfile /var/log/sigil-redis.log --save ""
for _ in $(seq 1 100); do
  cli PING >/dev/null 2>&1 && break
  sleep 0.1
done
cli PING >/dev/null 2>&1 || die "redis-server did not answer within 10 s; see /var/log/sigil-redis.log:
$(tail -n 20 /var/log/sigil-redis.log 2>/dev/null)"
ensure_settings
say "redis up at $host:$port (AOF appendfsync $fsync, noeviction)"
