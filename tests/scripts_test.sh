#!/usr/bin/env bash
# Tests of the build set-up itself (ctest label unit):
#   old_boost   configuring against Boost 1.74 fails, with a message that says what to install
#   setup_noop  scripts/setup.sh asks apt for nothing when every package is installed
set -euo pipefail
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$1" in
  old_boost)
    if cmake -S "$source_dir" -B "$work/build" -G Ninja -DNETLAB_TESTS=OFF \
         -DBoost_DIR="$source_dir/tests/cmake/old-boost" >"$work/out" 2>&1; then
      echo "FAIL: configure succeeded against Boost 1.74"; exit 1
    fi
    grep -q "netlab needs Boost >= 1.81 (found: 1.74.0)" "$work/out" ||
      { cat "$work/out"; echo "FAIL: no clear message"; exit 1; }
    grep -q "libboost1.81-dev" "$work/out" || { echo "FAIL: does not say what to install"; exit 1; }
    echo "PASS: configure refuses Boost 1.74 and names libboost1.81-dev"
    ;;
  setup_noop)
    # apt-get and sudo stand-ins that record any call: with everything installed, none is made.
    mkdir "$work/bin"
    for tool in apt-get sudo; do
      printf '#!/bin/sh\necho "%s $*" >> "%s/calls"\nexit 1\n' "$tool" "$work" > "$work/bin/$tool"
      chmod +x "$work/bin/$tool"
    done
    PATH="$work/bin:$PATH" bash "$source_dir/scripts/setup.sh"
    if [ -s "$work/calls" ]; then cat "$work/calls"; echo "FAIL: setup.sh called apt"; exit 1; fi
    echo "PASS: setup.sh installed nothing when nothing was missing"
    ;;
  *) echo "unknown case $1"; exit 2 ;;
esac
