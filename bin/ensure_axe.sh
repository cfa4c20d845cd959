#!/usr/bin/env bash
# The portal's accessibility tests inject axe-core (npm) into the Playwright pages.
# Install the locked version when it is missing; fail loudly when we can't (the
# accessibility tests fail too; SKIP_BROWSER_TESTS=1 opts out with the browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f node_modules/axe-core/axe.min.js ] || [ "${SKIP_BROWSER_TESTS:-}" = "1" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "ensure_axe: installing Debian's npm" >&2
  SUDO=""; if [ "$(id -u)" != "0" ]; then SUDO="sudo -n"; fi
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm || { echo "ensure_axe: could not install npm; install it or set SKIP_BROWSER_TESTS=1" >&2; exit 1; }
fi
echo "ensure_axe: npm ci (axe-core)" >&2
npm ci --no-audit --no-fund --silent
