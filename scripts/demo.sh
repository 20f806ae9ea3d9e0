#!/usr/bin/env bash
# The main job: a release build, then every exercise's --demo, each showing its real output.
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
exercises=(echo_split udp_pingpong conn_counter chat)
cmake --preset release >/dev/null
cmake --build --preset release --target "${exercises[@]}"  # the programs only, not the tests
bin=build/release/bin

for exercise in "${exercises[@]}"; do
  echo
  echo "=== ${exercise} --demo ==="
  "${bin}/${exercise}" --demo
done
