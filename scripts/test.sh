#!/usr/bin/env bash
# The whole test suite, as CI runs it: for each preset, configure, build and run every test
# (unit and integration); then the multi-threaded in-process tests (label unit) under
# ThreadSanitizer. Installs what is missing first.
#   bash scripts/test.sh            # debug + asan, then tsan (unit)
#   bash scripts/test.sh debug      # just the presets named, every test
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if (($#)); then
  for preset in "$@"; do
    echo "=== ${preset}: configure, build, test ==="
    cmake --workflow --preset "${preset}"
  done
  exit 0
fi

for preset in debug asan; do
  echo "=== ${preset}: configure, build, test ==="
  cmake --workflow --preset "${preset}"
done
# The unit tests run servers on 2 to 4 threads in one process, where ThreadSanitizer sees
# every access; the integration tests would only add minutes of slower start-ups.
echo "=== tsan: configure, build, unit tests ==="
cmake --preset tsan
cmake --build --preset tsan
ctest --preset tsan -L unit
