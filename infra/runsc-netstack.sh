#!/bin/sh
# runsc with gVisor's own network stack on this kernel: the `path` of the `runsc-net` Docker
# runtime (installed by infra/docker.sh as /usr/local/lib/sigil/runsc-netstack, with @RUNSC@ and
# @MNT@ filled in). See docs/sandbox.md "Egress", gVisor paragraph.
#
# Why: before it copies a container's interfaces into its netstack (and takes their addresses off
# the host side), runsc refuses the host's root network namespace, where that would strip the
# host's own addresses. This runsc (Debian 0.0~20221219) decides "root" by whether
# /proc/sys/net/core/rmem_default exists after joining the container's namespace; since Linux 6.x
# that sysctl exists in every namespace, so it refuses every container ("cannot run with network
# enabled in root network namespace"). Newer runsc releases reportedly probe another sysctl.
#
# What: runsc runs in a private mount namespace (only its own processes; nothing on the host
# changes) where /proc/sys/net is a read-only copy of itself, every name a symlink to the real
# entry, except core/rmem_default, which points at core/dev_weight: a sysctl only the initial
# namespace has (not namespaced in Linux; checked on 6.18). So the probe answers truthfully again: "root" in
# the host's namespace (runsc still refuses it), "not root" in a container's. Sysctl lookups
# follow the calling thread's namespace, also through a bind mount, so this holds after runsc's
# setns. Only `start` and `run` (where runsc sets up the network) get this; every other command
# (create, which starts the sandbox and gofer processes, state, kill, delete...) runs runsc as is,
# so what a container sees is unchanged. An argument that only looks like one of the two costs a
# namespace, nothing else. With a runsc whose probe works here, register runsc itself again.
# Any failure stops here, before runsc runs: the container does not start (fail closed).
set -eu
RUNSC=@RUNSC@
MNT=@MNT@
[ -x "$RUNSC" ] || { echo "runsc-netstack: $RUNSC is missing; run infra/docker.sh" >&2; exit 127; }
[ -d "$MNT" ] || { echo "runsc-netstack: $MNT is missing; run infra/docker.sh" >&2; exit 127; }
netup=false
for a in "$@"; do
  case "$a" in start | run) netup=true ;; esac
done
[ "$netup" = true ] || exec "$RUNSC" "$@"
exec /usr/bin/unshare --mount --propagation private -- /bin/sh -euc '
RUNSC=$1 MNT=$2
shift 2
mount -t tmpfs -o size=64k,mode=0755,nosuid,nodev,noexec sigil-runsc-netstack "$MNT"
mkdir "$MNT/real" "$MNT/view"
mount --bind /proc/sys/net "$MNT/real"
ln -s "$MNT"/real/* "$MNT/view/"
rm "$MNT/view/core"
mkdir "$MNT/view/core"
ln -s "$MNT"/real/core/* "$MNT/view/core/"
rm "$MNT/view/core/rmem_default"
ln -s "$MNT/real/core/dev_weight" "$MNT/view/core/rmem_default"
mount --bind -o ro "$MNT/view" /proc/sys/net
exec "$RUNSC" "$@"' runsc-netstack "$RUNSC" "$MNT" "$@"
