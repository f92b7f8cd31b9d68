#!/bin/sh
# Debian packages the project needs beyond PyPI and npm: Chromium (and a font) for the
# browser tests, which drive Debian's /usr/bin/chromium with Playwright (no browser
# download). Idempotent: does nothing when /usr/bin/chromium is already there.
# Needs root (apt-get), as on CI. Also checks that Node.js is recent enough for Vite.
set -eu

CHROMIUM=/usr/bin/chromium

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "install_system_deps.sh: node and npm are needed to build the web UI (Node >= 20.19)" >&2
    exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number);
              process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
    echo "install_system_deps.sh: Node $(node --version) is too old for Vite; need >= 20.19" >&2
    exit 1
fi

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_system_deps.sh: $CHROMIUM is missing; installing it needs root:" >&2
    echo "  sudo apt-get install chromium fonts-liberation" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-liberation
"$CHROMIUM" --version
