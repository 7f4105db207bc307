#!/usr/bin/env bash
# Install and start Docker Engine with the gVisor runtime (runsc) registered.
# Idempotent: when everything is in place it changes nothing and returns in about a second.
#
# What this VM needs (Debian bookworm in a Firecracker VM, no systemd as PID 1), found by probing:
# - cgroup driver: cgroupfs. The host has a cgroup v1 hierarchy (cgroup2 only at
#   /sys/fs/cgroup/unified) and no systemd, so the systemd driver cannot work; we pin
#   native.cgroupdriver=cgroupfs whenever /run/systemd/system is absent.
# - storage driver: overlay2. /var/lib/docker sits on ext4 and the kernel lists `overlay` in
#   /proc/filesystems, so overlay2 works natively (no fuse-overlayfs). If overlay is missing, or
#   /var/lib/docker is itself on overlayfs/tmpfs (nested containers), we fall back to
#   fuse-overlayfs when installed, else vfs (slow, full copies, but always works).
# - iptables: Debian's iptables-nft works here (nf_tables built into the kernel, no module dir
#   needed), so dockerd keeps managing its bridge rules. Where `iptables -t nat -S` fails we set
#   "iptables": false; sandboxes use NetworkMode "none" and never need the bridge anyway.
# - runsc: registered as `runsc` with --network=none (gVisor refuses to start in the host network
#   namespace otherwise, and sandboxes never have network) and as `runsc-ptrace` pinned to the
#   ptrace platform, and `runsc-net` (gVisor's network stack on, for jobs with egress only, see
#   docs/sandbox.md "Egress"), whose path is the wrapper infra/runsc-netstack.sh installed as
#   /usr/local/lib/sigil/runsc-netstack: this runsc's root-namespace probe is stale on Linux 6.x
#   and refuses every container otherwise (the wrapper says why). All add --oci-seccomp when
#   runsc knows it, so Docker's default seccomp profile also filters the job's syscalls inside the sandbox (without it runsc ignores the OCI
#   seccomp section; the sentry's own host-side filter applies either way). The default platform is a setting: SIGIL_RUNSC_PLATFORM=systrap|ptrace|kvm
#   adds --platform to `runsc`. Debian bookworm's runsc (20221219) predates systrap and defaults
#   to ptrace; newer runsc builds default to systrap.
# - kernel.pid_max: 32768 here. Under runsc's ptrace platform a guest task costs several host
#   tasks (a fork bomb held to 128 guest tasks peaked at ~4,750 host tasks), so a handful of
#   Tier 2 sandboxes could exhaust host PIDs; we raise pid_max to 4194304 (the 64-bit maximum)
#   when it is lower. SIGIL_KEEP_PID_MAX=1 leaves it alone.
# - dockerd has no service manager here, so we start it in the background ourselves
#   (log: /var/log/sigil-dockerd.log) and it keeps running after this script exits.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

DAEMON_JSON="${SIGIL_DAEMON_JSON:-/etc/docker/daemon.json}"
DOCKERD_LOG="${SIGIL_DOCKERD_LOG:-/var/log/sigil-dockerd.log}"
WAIT_SECONDS="${SIGIL_DOCKER_WAIT:-60}"
RUNSC_PLATFORM="${SIGIL_RUNSC_PLATFORM:-}"

need_root "infra/docker.sh" "apt-get install docker.io runsc; add runsc to /etc/docker/daemon.json with runtimeArgs [\"--network=none\"]; start dockerd"

# 1. Packages (docker.io brings dockerd, containerd, runc and docker-init).
apt_install docker.io runsc
RUNSC_PATH="$(command -v runsc || true)"
[ -n "$RUNSC_PATH" ] || die "runsc is installed but not on PATH; install the Debian package runsc"
[ -x /usr/sbin/dockerd ] || die "/usr/sbin/dockerd missing; reinstall the Debian package docker.io"
# Probes capture a command's output first and match it afterwards (probe_has in lib.sh), never
# `cmd | grep -q`: under pipefail that read as "no match" about one run in four, and dropped
# --oci-seccomp from daemon.json.
RUNSC_FLAGS="$("$RUNSC_PATH" flags 2>&1)" || die "\`runsc flags\` failed: $RUNSC_FLAGS"
RUNSC_VERSION="$("$RUNSC_PATH" --version 2>&1)" || RUNSC_VERSION="runsc (version unknown)"
RUNSC_VERSION="${RUNSC_VERSION%%$'\n'*}"
if [ -n "$RUNSC_PLATFORM" ]; then
  PLATFORM_HELP="$(grep -A1 -e '-platform' <<<"$RUNSC_FLAGS" || true)"
  grep -q -e "$RUNSC_PLATFORM" <<<"$PLATFORM_HELP" ||
    die "SIGIL_RUNSC_PLATFORM=$RUNSC_PLATFORM is not supported by $RUNSC_VERSION"
fi

OCI_SECCOMP=""
if probe_has '-oci-seccomp' "$RUNSC_PATH" flags; then
  OCI_SECCOMP="--oci-seccomp"
else
  warn "$RUNSC_VERSION has no --oci-seccomp: Tier 2 jobs would run without Docker's seccomp profile inside gVisor (the worker and /health refuse that); install a newer runsc"
fi

# The netstack wrapper for runsc-net, with this runsc's path; rewritten only when it differs.
NETSTACK_DIR="/usr/local/lib/sigil"
NETSTACK_WRAPPER="$NETSTACK_DIR/runsc-netstack"
command -v unshare >/dev/null 2>&1 || die "unshare is missing (Debian package util-linux); runsc-net needs it"
[ -e /proc/sys/net/core/dev_weight ] ||
  warn "/proc/sys/net/core/dev_weight is missing: this is not the initial network namespace, so runsc-net will not refuse dockerd's own namespace (as newer runsc would not)"
install -d -m 0755 "$NETSTACK_DIR" "$NETSTACK_WRAPPER.mnt"
NETSTACK_NEW="$(sed -e "s|@RUNSC@|$RUNSC_PATH|" -e "s|@MNT@|$NETSTACK_WRAPPER.mnt|" "$HERE/runsc-netstack.sh")"
if [ ! -x "$NETSTACK_WRAPPER" ] || [ "$(cat "$NETSTACK_WRAPPER")" != "$NETSTACK_NEW" ]; then
  printf '%s\n' "$NETSTACK_NEW" >"$NETSTACK_WRAPPER.tmp"
  chmod 0755 "$NETSTACK_WRAPPER.tmp"
  mv -f "$NETSTACK_WRAPPER.tmp" "$NETSTACK_WRAPPER"
  log "installed $NETSTACK_WRAPPER"
fi

# 2. Probe what this machine needs (used only for keys the operator has not set).
CGROUP_DRIVER=""
[ -d /run/systemd/system ] || CGROUP_DRIVER="cgroupfs"
mkdir -p /var/lib/docker
DOCKER_ROOT_FS="$(stat -f -c %T /var/lib/docker 2>/dev/null || echo unknown)"
if grep -qw overlay /proc/filesystems && [ "$DOCKER_ROOT_FS" != "overlayfs" ] && [ "$DOCKER_ROOT_FS" != "tmpfs" ]; then
  STORAGE_DRIVER="overlay2"
elif command -v fuse-overlayfs >/dev/null 2>&1; then
  STORAGE_DRIVER="fuse-overlayfs"
else
  STORAGE_DRIVER="vfs"
  warn "overlayfs unusable for /var/lib/docker ($DOCKER_ROOT_FS); using the vfs storage driver (slow). apt-get install fuse-overlayfs for better speed."
fi
IPTABLES_OK=true
if ! command -v iptables >/dev/null 2>&1 || ! iptables -t nat -S >/dev/null 2>&1; then
  IPTABLES_OK=false
  warn "iptables does not work here; dockerd will run with \"iptables\": false (sandboxes use no network)"
fi

if [ "${SIGIL_KEEP_PID_MAX:-0}" != "1" ] && [ "$(cat /proc/sys/kernel/pid_max)" -lt 4194304 ]; then
  if echo 4194304 >/proc/sys/kernel/pid_max 2>/dev/null; then
    log "raised kernel.pid_max to 4194304 (gVisor sandboxes use many host tasks)"
  else
    warn "could not raise kernel.pid_max (now $(cat /proc/sys/kernel/pid_max)); set it by hand: sysctl -w kernel.pid_max=4194304"
  fi
fi

# 3. Merge our settings into daemon.json. Runtimes are ours and always written; the machine
#    settings are only added when absent, so an operator's choices win.
mkdir -p "$(dirname "$DAEMON_JSON")"
MERGE_JS='
const fs = require("node:fs");
const [file, runscPath, platform, cgroupDriver, storageDriver, iptablesOk, ociSeccomp, netstackPath] = process.argv.slice(1);
let cfg = {};
let before = "";
if (fs.existsSync(file)) {
  before = fs.readFileSync(file, "utf8");
  if (before.trim() !== "") {
    try { cfg = JSON.parse(before); } catch (e) { console.error(`${file} is not valid JSON: ${e.message}`); process.exit(2); }
  }
  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) { console.error(`${file} must hold a JSON object`); process.exit(2); }
}
const baseArgs = ociSeccomp ? ["--network=none", ociSeccomp] : ["--network=none"];
cfg.runtimes = { ...(cfg.runtimes ?? {}),
  runsc: { path: runscPath, runtimeArgs: platform ? [...baseArgs, `--platform=${platform}`] : baseArgs },
  "runsc-ptrace": { path: runscPath, runtimeArgs: [...baseArgs, "--platform=ptrace"] },
  // Tier 2 jobs with egress (docs/sandbox.md "Egress"): gVisor with its own network stack, for
  // containers attached to a per-job internal network; every other job keeps --network=none.
  // Through the wrapper (runsc-netstack.sh), which fixes the stale root-namespace probe of this
  // runsc for its network set-up only.
  "runsc-net": { path: netstackPath, runtimeArgs: [...(ociSeccomp ? [ociSeccomp] : []), "--network=sandbox", ...(platform ? [`--platform=${platform}`] : [])] },
};
const hasExecOpt = (cfg["exec-opts"] ?? []).some((o) => String(o).startsWith("native.cgroupdriver="));
if (cgroupDriver && !hasExecOpt) cfg["exec-opts"] = [...(cfg["exec-opts"] ?? []), `native.cgroupdriver=${cgroupDriver}`];
if (!("storage-driver" in cfg)) cfg["storage-driver"] = storageDriver;
if (iptablesOk === "false" && !("iptables" in cfg)) cfg.iptables = false;
const after = `${JSON.stringify(cfg, null, 2)}\n`;
if (after === before) { console.log("unchanged"); process.exit(0); }
fs.writeFileSync(`${file}.tmp`, after);
fs.renameSync(`${file}.tmp`, file);
console.log("changed");
'
if command -v node >/dev/null 2>&1; then
  MERGED="$(node -e "$MERGE_JS" "$DAEMON_JSON" "$RUNSC_PATH" "$RUNSC_PLATFORM" "$CGROUP_DRIVER" "$STORAGE_DRIVER" "$IPTABLES_OK" "$OCI_SECCOMP" "$NETSTACK_WRAPPER")" ||
    die "could not merge $DAEMON_JSON (see message above); fix the file by hand"
else
  die "node is needed to merge $DAEMON_JSON safely (install Node 20); or add by hand: \"runtimes\": {\"runsc\": {\"path\": \"$RUNSC_PATH\", \"runtimeArgs\": [\"--network=none\"]}}"
fi
[ "$MERGED" = "changed" ] && log "updated $DAEMON_JSON"

# 4. Start dockerd when nothing answers (or reload it when our runtimes changed).
dockerd_pid() {
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q dockerd "/proc/$pid/comm" 2>/dev/null; then
    echo "$pid"
  fi
}

if docker_up; then
  if [ "$MERGED" = "changed" ]; then
    pid="$(dockerd_pid)"
    if [ -n "$pid" ]; then
      # Runtimes are reloadable on SIGHUP; cgroup/storage/iptables settings only apply at the next start.
      log "reloading dockerd (pid $pid) to pick up runtimes"
      kill -HUP "$pid"
      sleep 1
    else
      warn "dockerd is running but its pid is unknown; restart it to apply $DAEMON_JSON"
    fi
  fi
else
  if [ -z "$(dockerd_pid)" ]; then
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid + nohup: dockerd must outlive this script and the shell that called it.
    setsid nohup /usr/sbin/dockerd --config-file "$DAEMON_JSON" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  else
    log "dockerd is starting (pid $(dockerd_pid)); waiting"
  fi
  deadline=$((SECONDS + WAIT_SECONDS))
  until docker_up; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "----- last lines of $DOCKERD_LOG -----" >&2
      tail -n 40 "$DOCKERD_LOG" >&2 || true
      die "dockerd did not answer \`docker info\` within ${WAIT_SECONDS}s (see the log above)"
    fi
    sleep 0.5
  done
  log "dockerd is up"
fi

# 5. Verify the runtimes dockerd actually has.
RUNTIMES="$("$DOCKER_BIN" info --format '{{json .Runtimes}}')"
for rt in runc runsc; do
  node -e 'const r = JSON.parse(process.argv[1]); process.exit(process.argv[2] in r ? 0 : 1)' "$RUNTIMES" "$rt" ||
    die "dockerd does not list the runtime '$rt' (runtimes: $RUNTIMES). Check $DAEMON_JSON and restart dockerd."
done
log "docker ready: $("$DOCKER_BIN" info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}'), runtimes: $(node -e 'console.log(Object.keys(JSON.parse(process.argv[1])).join(", "))' "$RUNTIMES")"

# 6. Prove the hardening is in effect, not only configured: a container under each gVisor runtime
#    must run with a seccomp filter (Seccomp: 2 in /proc/self/status). Needs the busybox image,
#    which images.sh builds after this script on a first set-up; the worker and /health check
#    the same at run time.
PROBE_IMAGE="sigil/busybox:1"
if "$DOCKER_BIN" image inspect "$PROBE_IMAGE" >/dev/null 2>&1; then
  for rt in runsc runsc-ptrace runsc-net; do
    STATUS="$("$DOCKER_BIN" run --rm --runtime "$rt" --network none --read-only --cap-drop ALL \
      --security-opt no-new-privileges --user 1000:1000 --entrypoint /bin/cat "$PROBE_IMAGE" \
      /proc/self/status 2>&1)" || die "a probe container under $rt failed: $STATUS"
    MODE="$(awk '$1 == "Seccomp:" { print $2 }' <<<"$STATUS")"
    [ "$MODE" = "2" ] ||
      die "containers under $rt run without a seccomp filter (Seccomp: ${MODE:-none}); check that $DAEMON_JSON gives $rt --oci-seccomp and that dockerd reloaded it"
  done
  log "seccomp filter in effect under runsc, runsc-ptrace and runsc-net (Seccomp: 2)"
fi
