#!/usr/bin/env bash
# The portal's browser tests drive Debian's Chromium (never a downloaded browser).
# Install it when it is missing; fail loudly when we can't: a suite that silently
# skipped the portal's browser tests would pass without proving the portal works.
# (SKIP_BROWSER_TESTS=1 opts out explicitly, e.g. on a machine without apt.)
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ] || [ "${SKIP_BROWSER_TESTS:-}" = "1" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else echo "ensure_browser: $CHROMIUM missing and not root (no sudo); install chromium or set SKIP_BROWSER_TESTS=1" >&2; exit 1; fi
fi
echo "ensure_browser: installing Debian's chromium" >&2
$SUDO apt-get update -qq || true
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; then
  echo "ensure_browser: could not install chromium; install it or set SKIP_BROWSER_TESTS=1" >&2
  exit 1
fi
