# Shared helpers for the infra scripts. Source it: `. "$(dirname "$0")/lib.sh"`.
# shellcheck shell=bash

# The Debian client; /usr/local/bin/docker on the dev VMs is a stray, newer client that may
# not match dockerd's API version, so never rely on PATH order.
DOCKER_BIN="${SIGIL_DOCKER_BIN:-/usr/bin/docker}"

log() { printf '[sigil-infra] %s\n' "$*"; }
warn() { printf '[sigil-infra] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[sigil-infra] ERROR: %s\n' "$*" >&2
  exit 1
}

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    die "$1 must run as root (it installs packages and manages dockerd). Re-run with sudo, or do by hand: $2"
  fi
}

# probe_has PATTERN CMD... : 0 when the output (stdout and stderr) of CMD contains PATTERN, 1 when
# not, 2 when CMD fails. The output is captured first and matched afterwards: `CMD | grep -q` under
# pipefail reads as "no match" whenever grep exits at its first match and CMD, still writing,
# dies of SIGPIPE (that dropped runsc's --oci-seccomp about one set-up in four). Every probe in
# infra/ captures first; none pipes into grep -q or head.
probe_has() {
  local pattern="$1" out
  shift
  out="$("$@" 2>&1)" || return 2
  grep -q -e "$pattern" <<<"$out"
}

# Capture, then compare.
pkg_installed() {
  local status
  status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" || return 1
  [ "$status" = "install ok installed" ]
}

# apt_install PKG... : install the packages that are missing; a no-op (and no network) when
# all are present, so a second run stays fast.
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    pkg_installed "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing packages: ${missing[*]} and apt-get is not available. Install them by hand (Debian/Ubuntu package names: ${missing[*]})."
  fi
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    log "apt-get install failed; refreshing package lists and retrying"
    apt-get update || die "apt-get update failed (no network or mirror?). Install by hand: apt-get install ${missing[*]}"
    apt-get install -y --no-install-recommends "${missing[@]}" ||
      die "could not install ${missing[*]}. Install by hand: apt-get install ${missing[*]}"
  fi
}

docker_up() { "$DOCKER_BIN" info >/dev/null 2>&1; }

# First Debian mirror apt uses on this machine (both the one-line sources.list format and
# deb822 *.sources files); falls back to deb.debian.org. Only files apt itself reads count.
apt_mirror() {
  local f uri=""
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # awk picks the first non-security mirror itself: no early-exiting reader in a pipeline.
    uri="$(awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i ~ /^(https?|file):/ && $i !~ /-security/) { print $i; exit } }' "$f" || true)"
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      # deb822 stanzas: take URIs of a stanza whose Suites name the plain release (not security).
      uri="$(awk '
        BEGIN { RS=""; FS="\n" }
        {
          u=""; s=""; t=""
          for (i=1;i<=NF;i++) {
            if ($i ~ /^URIs:/) { u=$i; sub(/^URIs:[ \t]*/, "", u); split(u, a, /[ \t]+/); u=a[1] }
            if ($i ~ /^Suites:/) { s=$i }
            if ($i ~ /^Types:/) { t=$i }
          }
          if (u != "" && t ~ /(^|[ \t])deb([ \t]|$)/ && s !~ /-security/ && u ~ /debian/) { print u; exit }
        }' "$f" || true)"
      [ -n "$uri" ] && break
    done
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
