#!/usr/bin/env bash
# Runs the whole test suite (unit, integration, reference and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
exec cargo test --locked "$@"
