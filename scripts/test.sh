#!/usr/bin/env bash
# The whole test suite, as CI runs it: for each preset, configure, build and run every test
# (unit and integration); then, under ThreadSanitizer, the unit tests and the integration tests
# that load a 4-thread server. Installs what is missing first.
#   bash scripts/test.sh            # debug + asan, then tsan (unit + 4-thread integration)
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
# every access; of the integration tests, those that load a server running 4 threads (the
# rest would only add minutes of slower start-ups). TSAN_OPTIONS in the preset halts the
# server at the first race, which fails the test.
echo "=== tsan: configure, build, unit tests and the 4-thread integration tests ==="
cmake --preset tsan
cmake --build --preset tsan
ctest --preset tsan -L unit
ctest --preset tsan -L integration \
  -R 'threads_1_and_4|four_threads|50_clients_200_lines|1000_joins|sigint_with_100_clients'

