#!/usr/bin/env bash
# The web console (docs/console.md): Debian's chromium for its browser tests (never a downloaded
# browser), and the static bundle console/dist/console/, rebuilt only when it is missing or older
# than a source it is built from; a second run does nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"
cd "$HERE/.."

if ! pkg_installed chromium; then
  need_root "installing chromium" "apt-get install chromium"
  apt_install chromium
fi

stamp=console/dist/console/index.html
if [ -f "$stamp" ] && [ -z "$(find console/src console/index.html console/vite.config.ts shared sdk -newer "$stamp" -type f -print -quit)" ]; then
  exit 0
fi
log "building the web console"
npx vite build --config console/vite.config.ts
