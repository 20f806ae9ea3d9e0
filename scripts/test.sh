#!/usr/bin/env bash
# The whole test suite, as CI runs it: for each preset (default: debug, then asan), configure,
# build and run every test (unit and integration). Installs what is missing first.
#   bash scripts/test.sh            # debug + asan
#   bash scripts/test.sh tsan       # just the presets named
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
presets=("$@")
((${#presets[@]})) || presets=(debug asan)
for preset in "${presets[@]}"; do
  echo "=== ${preset}: configure, build, test ==="
  cmake --workflow --preset "${preset}"
done
