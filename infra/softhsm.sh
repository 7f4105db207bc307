#!/usr/bin/env bash
# Installs Debian's SoftHSM2 (a PKCS#11 token in software, with PKCS#11 v3.0 EdDSA) and
# initialises one token for a local `npm start` with the HSM key provider; idempotent, and a
# second run only looks. Tests never use this token: each creates its own in a temporary
# directory (test/hsm/support.ts).
#
#   token      "sigil-local" in SoftHSM2's default token directory (/etc/softhsm/softhsm2.conf)
#   user PIN   random, in /var/lib/sigil/hsm/pin (0600); the SO PIN is not kept
#   config     /var/lib/sigil/hsm/hsm.json, for [security] hsm_config_path:
#              SIGIL_KEY_STORE=hsm SIGIL_HSM_CONFIG_PATH=/var/lib/sigil/hsm/hsm.json npm start
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

MODULE=/usr/lib/softhsm/libsofthsm2.so
LABEL=${SIGIL_HSM_TOKEN_LABEL:-sigil-local}
DIR=${SIGIL_HSM_DIR:-/var/lib/sigil/hsm}

if ! pkg_installed softhsm2 || [ ! -f "$MODULE" ]; then
  need_root "installing softhsm2" "apt-get install softhsm2"
  apt_install softhsm2
fi
[ -f "$MODULE" ] || die "softhsm2 is installed but $MODULE is missing"

# The local token: left alone when it exists (its keys are the local deployment's keys).
if [ "$(id -u)" -ne 0 ]; then
  log "softhsm2 ready (not root: the local token is initialised by a root run of infra/softhsm.sh)"
  exit 0
fi
if probe_has "Label: *$LABEL *$" softhsm2-util --show-slots; then
  [ -f "$DIR/pin" ] || warn "token $LABEL exists but $DIR/pin does not; to start over: softhsm2-util --delete-token --token $LABEL, then re-run"
  log "softhsm2 ready (token $LABEL)"
  exit 0
fi
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077
pin="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
so_pin="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
softhsm2-util --init-token --free --label "$LABEL" --pin "$pin" --so-pin "$so_pin" >/dev/null
printf '%s\n' "$pin" >"$DIR/pin"
chmod 600 "$DIR/pin"
cat >"$DIR/hsm.json" <<JSON
{
  "module": "$MODULE",
  "token_label": "$LABEL",
  "pin_file": "$DIR/pin",
  "key_label": "sigil",
  "sessions": 4
}
JSON
log "softhsm2 token $LABEL initialised; hsm_config_path = $DIR/hsm.json"
