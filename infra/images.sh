#!/usr/bin/env bash
# Build the sandbox images locally with `docker import` (no registry is reachable here):
#   sigil/busybox:1  from the busybox-static binary (~2 MB)
#   sigil/python:1   from `debootstrap --variant=minbase --include=python3-minimal bookworm`
# Both carry the warm-pool entrypoint /usr/local/bin/sigil-entry, user 1000:1000 and /work, and
# the labels sigil.image=<name> and sigil.image.rev=<hash of this script>. An image whose rev
# matches is left alone, so a second run does nothing; editing this script rebuilds both images.
# The debootstrap root filesystem is cached under /var/cache/sigil/ (rebuilding it takes ~30 s
# and needs the apt mirror; re-importing from the cache takes seconds).
#
# The warm-pool protocol (worker/sandbox/ speaks the other side): the container starts, the
# entrypoint blocks reading a nonce line and then one tar archive on stdin (stdin is closed after
# it), unpacks it into /work, runs `sh /work/.sigil/run < /work/.sigil/stdin`, writes the exit
# trailer `SIGIL-EXIT-<nonce>:<status>` on stdout and stderr, and exits with the job's status.
# One archive, one job, one exit: a container never serves a second job.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

need_root "infra/images.sh" "apt-get install busybox-static debootstrap, then build the images as this script does"
docker_up || die "dockerd is not answering; run infra/docker.sh first"

CACHE_DIR="${SIGIL_IMAGE_CACHE:-/var/cache/sigil}"
SUITE="bookworm"
PY_INCLUDE="python3-minimal"
PY_CACHE="$CACHE_DIR/rootfs-$SUITE-minbase-$PY_INCLUDE.tar"
IMAGE_REV="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
SANDBOX_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

apt_install busybox-static debootstrap
mkdir -p "$CACHE_DIR"
WORK="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

image_current() { # image_current TAG -> 0 when TAG exists with this script's rev
  local rev
  rev="$("$DOCKER_BIN" image inspect --format '{{index .Config.Labels "sigil.image.rev"}}' "$1" 2>/dev/null || true)"
  [ "$rev" = "$IMAGE_REV" ]
}

# Files every sandbox image gets on top of its root filesystem.
add_sigil_layer() { # add_sigil_layer ROOTFS
  local root="$1"
  mkdir -p "$root/usr/local/bin" "$root/work" "$root/tmp" "$root/etc"
  cat >"$root/usr/local/bin/sigil-entry" <<'ENTRY'
#!/bin/sh
# Sigil warm-pool entrypoint: wait for exactly one job (a nonce line, then a tar archive on
# stdin), unpack it into /work, run it, then end stdout and stderr with the exit trailer
# `SIGIL-EXIT-<nonce>:<status>` and exit with the job's status. The trailer tells the worker the
# job is over (and all its output arrived: each pipe is FIFO) without waiting for the container's
# teardown. Errors before the job starts exit 125 with a reason.
cd /work || { echo "sigil-entry: /work is missing" >&2; exit 125; }
IFS= read -r nonce || { echo "sigil-entry: no job on stdin" >&2; exit 125; }
tar -x -f - -C /work || { echo "sigil-entry: could not unpack the job archive" >&2; exit 125; }
[ -r /work/.sigil/run ] || { echo "sigil-entry: the job archive has no .sigil/run" >&2; exit 125; }
[ -r /work/.sigil/stdin ] || : >/work/.sigil/stdin
# Not exec: this shell stays PID 1 so the job is never PID 1 (signals behave normally) and the
# container's exit status is the job's (128+n when a signal ended it). The nonce is not exported.
/bin/sh /work/.sigil/run </work/.sigil/stdin
status=$?
printf 'SIGIL-EXIT-%s:%s\n' "$nonce" "$status"
printf 'SIGIL-EXIT-%s:%s\n' "$nonce" "$status" >&2
exit "$status"
ENTRY
  chmod 0755 "$root/usr/local/bin/sigil-entry"
  chmod 1777 "$root/tmp"
  chown 1000:1000 "$root/work"
  chmod 0755 "$root/work"
  grep -q '^sandbox:' "$root/etc/passwd" 2>/dev/null ||
    echo 'sandbox:x:1000:1000:sigil sandbox:/work:/bin/sh' >>"$root/etc/passwd"
  grep -q '^sandbox:' "$root/etc/group" 2>/dev/null || echo 'sandbox:x:1000:' >>"$root/etc/group"
}

import_rootfs() { # import_rootfs ROOTFS TAG NAME
  local root="$1" tag="$2" name="$3" old
  old="$("$DOCKER_BIN" image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
  log "importing $tag"
  tar --numeric-owner -C "$root" -c . | "$DOCKER_BIN" import \
    --change "ENTRYPOINT [\"/usr/local/bin/sigil-entry\"]" \
    --change "USER 1000:1000" \
    --change "WORKDIR /work" \
    --change "ENV PATH=$SANDBOX_PATH HOME=/work LANG=C.UTF-8" \
    --change "LABEL sigil.image=$name sigil.image.rev=$IMAGE_REV" \
    - "$tag" >/dev/null
  # Drop the previous revision so rebuilds leave no dangling images (fails harmlessly if in use).
  [ -z "$old" ] || "$DOCKER_BIN" rmi "$old" >/dev/null 2>&1 || true
}

# Run one job through the real entrypoint protocol on each runtime: proves image + runtime work.
smoke() { # smoke TAG RUNTIME COMMAND...
  local tag="$1" runtime="$2"
  shift 2
  local job="$WORK/smoke-job"
  rm -rf "$job" && mkdir -p "$job/.sigil"
  printf '%s\n' "$*" >"$job/.sigil/run"
  : >"$job/.sigil/stdin"
  local out err
  err="$WORK/smoke-stderr"
  # stdout and stderr are separate pipes (their relative order is not kept): check each.
  out="$({
    echo smoketest
    tar --numeric-owner --owner=1000 --group=1000 -C "$job" -c .sigil
  } |
    "$DOCKER_BIN" run -i --rm --runtime "$runtime" --network none --read-only \
      --tmpfs /work:rw,size=16m,mode=0700,uid=1000,gid=1000 --tmpfs /tmp:rw,size=16m,mode=1777 \
      --security-opt no-new-privileges --cap-drop ALL "$tag" 2>"$err")" ||
    die "smoke test of $tag on $runtime failed: $out $(cat "$err")"
  [ "$out" = "$(printf 'sigil-smoke-ok\nSIGIL-EXIT-smoketest:0')" ] &&
    [ "$(cat "$err")" = "SIGIL-EXIT-smoketest:0" ] ||
    die "smoke test of $tag on $runtime printed: $out / stderr: $(cat "$err")"
}

build_busybox() {
  local tag="sigil/busybox:1"
  if image_current "$tag"; then
    log "$tag is up to date"
    return 0
  fi
  local root="$WORK/busybox"
  mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/proc" "$root/sys" "$root/dev"
  cp /bin/busybox "$root/bin/busybox"
  local applet
  # --list-full gives install paths such as bin/sh and usr/bin/env.
  while IFS= read -r applet; do
    [ "$applet" = "bin/busybox" ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done < <("$root/bin/busybox" --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  chmod 0700 "$root/root"
  add_sigil_layer "$root"
  import_rootfs "$root" "$tag" busybox
}

build_python() {
  local tag="sigil/python:1"
  if image_current "$tag"; then
    log "$tag is up to date"
    return 0
  fi
  if [ ! -s "$PY_CACHE" ]; then
    local mirror
    mirror="$(apt_mirror)"
    local boot="$WORK/debootstrap"
    log "debootstrap $SUITE (minbase + $PY_INCLUDE) from $mirror (about 30 s)"
    debootstrap --variant=minbase --include="$PY_INCLUDE" "$SUITE" "$boot" "$mirror" >"$WORK/debootstrap.log" 2>&1 || {
      tail -n 30 "$WORK/debootstrap.log" >&2
      die "debootstrap failed (mirror $mirror); check network access to the mirror"
    }
    # Package caches and docs are dead weight in a sandbox image.
    rm -rf "$boot"/var/cache/apt/archives/*.deb "$boot"/var/lib/apt/lists/* \
      "$boot"/usr/share/doc/* "$boot"/usr/share/man/* "$boot"/usr/share/info/*
    tar --numeric-owner -C "$boot" -cf "$PY_CACHE.tmp" .
    mv "$PY_CACHE.tmp" "$PY_CACHE"
    rm -rf "$boot"
    log "cached the root filesystem at $PY_CACHE"
  fi
  local root="$WORK/python"
  mkdir -p "$root"
  tar --numeric-owner -C "$root" -xf "$PY_CACHE"
  add_sigil_layer "$root"
  import_rootfs "$root" "$tag" python
  rm -rf "$root"
}

build_busybox
build_python
for rt in runc runsc; do
  smoke sigil/busybox:1 "$rt" echo sigil-smoke-ok
  smoke sigil/python:1 "$rt" python3 -c "'print(\"sigil-smoke-ok\")'"
done
log "images ready: $("$DOCKER_BIN" images --filter label=sigil.image --filter dangling=false --format '{{.Repository}}:{{.Tag}} ({{.Size}})' | tr '\n' ' ')"
