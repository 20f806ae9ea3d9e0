#!/usr/bin/env bash
# The main job: a release build, then every exercise's --demo, each showing its real output.
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
bin=build/release/bin

for exercise in echo_split; do
  echo
  echo "=== ${exercise} --demo ==="
  "${bin}/${exercise}" --demo
done
