#!/usr/bin/env bash
# Builds the Go benchmark peers: build.sh OUTDIR -> OUTDIR/go_echo, OUTDIR/go_chat.
# Standard library only, offline: no module download is ever attempted.
set -euo pipefail
die() { echo "go/build.sh: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: build.sh OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1" || die "cannot create $1"
out=$(cd "$1" && pwd)

# Debian's golang-go (Go 1.19 on Debian 12), installed only when missing.
if ! dpkg -s golang-go >/dev/null 2>&1; then
  sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q golang-go >/dev/null ||
    { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q golang-go >/dev/null; } ||
    die "cannot install golang-go"
fi

# Every cache under OUTDIR, nothing in the source tree or in $HOME; never the network.
export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local GO111MODULE=on
export GOCACHE="$out/.gocache" GOPATH="$out/.gopath"
cd "$here"
for prog in echo chat; do
  go build -trimpath -o "$out/go_$prog" "./$prog" || die "go build ./$prog failed"
done
