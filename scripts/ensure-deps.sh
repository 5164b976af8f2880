#!/usr/bin/env bash
# Checks (and on Debian/Ubuntu installs) the system packages the build and the tests need:
# cmake, a C++ compiler and the sqlite3 program are used to compile the bundled PROJ library;
# chromium (headless) renders the HTML picture in tests/it/http_picture_browser.rs, which is
# skipped without it (scripts/test.sh makes it required where this script can install it).
set -euo pipefail
need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v sqlite3 >/dev/null 2>&1 || need+=(sqlite3)
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cargo >/dev/null 2>&1 || { echo "hotspots needs Rust (cargo): install it from https://rustup.rs" >&2; exit 1; }
want=()
command -v chromium >/dev/null 2>&1 || want+=(chromium)
[ ${#need[@]} -eq 0 ] && [ ${#want[@]} -eq 0 ] && exit 0
# apt-get install as root, or with sudo when it needs no password; fails when neither can.
updated=
apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { [ -n "$updated" ] || apt-get update -qq; } && updated=1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    { [ -n "$updated" ] || sudo apt-get update -qq; } && updated=1 &&
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
  else
    return 1
  fi
}
if [ ${#need[@]} -gt 0 ]; then
  echo "hotspots: installing system packages needed to build PROJ: ${need[*]}" >&2
  apt_install "${need[@]}" || {
    echo "hotspots: missing ${need[*]}; please run: sudo apt-get install -y ${need[*]} ${want[*]}" >&2
    exit 1
  }
fi
# separately: the build does not need them, and where they cannot be installed (on Ubuntu,
# chromium is a snap rather than this package) the build must still go ahead
if [ ${#want[@]} -gt 0 ]; then
  echo "hotspots: installing system packages the tests need: ${want[*]}" >&2
  apt_install "${want[@]}" ||
    echo "hotspots: missing ${want[*]} (the browser test of the HTML picture is skipped, or fails with HOTSPOTS_REQUIRE_CHROMIUM=1); please run: sudo apt-get install -y ${want[*]}" >&2
fi
exit 0
