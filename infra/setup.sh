#!/usr/bin/env bash
# Sets up everything Sigil needs on a Debian machine, idempotently: npm dependencies, Redis,
# Docker Engine with gVisor (runsc), the sandbox images, and SoftHSM2 (the PKCS#11 token for
# key_store_type = "hsm"). A second run does nothing and takes
# seconds. `npm start` and `npm test` call it; SIGIL_SKIP_INFRA=1 skips it (CI runs it once).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[sigil infra] %s\n' "$*"; }

if [ "${SIGIL_SKIP_INFRA:-0}" = "1" ]; then
  say "SIGIL_SKIP_INFRA=1: skipping set-up"
  exit 0
fi

# npm ci only when the installed tree does not match the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-fund --no-audit --loglevel=error
fi

bash infra/redis.sh
bash infra/docker.sh
bash infra/images.sh
bash infra/softhsm.sh
bash infra/console.sh
say "ready"
