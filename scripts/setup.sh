#!/usr/bin/env bash
# Installs, only when missing, the Debian 12 packages netlab needs to build and test.
# Safe to run again: it asks apt for nothing when every package is already there.
set -euo pipefail

# Why these: a C++20 compiler, CMake >= 3.25 and Ninja for the presets; Boost 1.81 for Asio
# coroutines and channels (the default libboost-dev is 1.74, too old, and conflicts with 1.81);
# Boost.Test for the unit tests; spdlog (with fmt) for logging; CLI11 for the command line;
# python3, procps (kill) and util-linux (prlimit, taskset) are used by the tests, the
# walkthroughs and the benchmarks.
packages=(
  g++ cmake ninja-build pkg-config
  libboost1.81-dev libboost-test1.81-dev
  libspdlog-dev libcli11-dev
  python3 procps util-linux
)
packages+=("$@")   # callers may ask for more (the benchmarks do)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

if dpkg-query -W -f='${Status}' libboost1.74-dev 2>/dev/null | grep -q 'install ok installed'; then
  echo "note: libboost1.74-dev is installed and conflicts with libboost1.81-dev; apt will replace it" >&2
fi

sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "error: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
