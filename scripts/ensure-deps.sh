#!/usr/bin/env bash
# Checks (and on Debian/Ubuntu installs) the system packages the build needs:
# cmake, a C++ compiler and the sqlite3 program are used to compile the bundled PROJ library.
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cargo >/dev/null 2>&1 || { echo "hotspots needs Rust (cargo): install it from https://rustup.rs" >&2; exit 1; }
[ ${#need[@]} -eq 0 ] && exit 0
echo "hotspots: installing system packages needed to build PROJ: ${need[*]}" >&2
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
else
  echo "hotspots: missing ${need[*]}; please run: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
