#!/usr/bin/env bash
# Builds the C epoll benchmark peer: build.sh OUTDIR -> OUTDIR/epoll_echo.
set -euo pipefail
die() { echo "epoll/build.sh: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: build.sh OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1" || die "cannot create $1"
out=$(cd "$1" && pwd)

# A C compiler and the libc headers, installed only when missing.
missing=()
for pkg in gcc libc6-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if ((${#missing[@]})); then
  sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; } ||
    die "cannot install ${missing[*]}"
fi

cc -O2 -Wall -Wextra -Werror -o "$out/epoll_echo" "$here/echo.c" || die "cc echo.c failed"
