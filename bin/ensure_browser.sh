#!/usr/bin/env bash
# The portal's browser tests drive Debian's Chromium (never a downloaded browser).
# Install it when it is missing; skip quietly when we can't (the tests then skip).
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else echo "ensure_browser: $CHROMIUM missing and not root; browser tests will skip" >&2; exit 0; fi
fi
echo "ensure_browser: installing Debian's chromium" >&2
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium || echo "ensure_browser: could not install chromium; browser tests will skip" >&2
