#!/usr/bin/env bash
# Runs the whole test suite (unit, integration, reference and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
# Where ensure-deps.sh can install packages (root, or sudo without a password: as in CI),
# chromium must be there: the browser test of the HTML picture then fails instead of skipping.
if command -v apt-get >/dev/null 2>&1 &&
  { [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }; then
  export HOTSPOTS_REQUIRE_CHROMIUM="${HOTSPOTS_REQUIRE_CHROMIUM:-1}"
fi
exec cargo test --locked "$@"
