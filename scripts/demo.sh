#!/usr/bin/env bash
# Starts the service with the demo data (dataset overlast-zaandam) on the embedded store in ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
exec cargo run --release --locked -- serve --demo "$@"
