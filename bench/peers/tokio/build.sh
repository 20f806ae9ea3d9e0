#!/usr/bin/env bash
# Builds the Rust/tokio peers offline, with Debian's toolchain and Debian's packaged crates.
#
#   bench/peers/tokio/build.sh OUTDIR
#
# Installs what is missing (cargo, rustc, librust-tokio-dev: Debian's tokio 1.24 with every
# feature and its dependencies, under /usr/share/cargo/registry), builds in OUTDIR/tokio-target,
# and leaves OUTDIR/tokio_echo_split, tokio_udp_pingpong, tokio_conn_counter, tokio_chat.
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }

[[ $# -eq 1 && -n $1 ]] || die "usage: build.sh OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || die "cannot find the script's directory"
mkdir -p "$1" 2>/dev/null || die "cannot create $1"
out=$(cd "$1" && pwd) || die "cannot enter $1"

packages=(cargo rustc librust-tokio-dev)
missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null) || status=
  [[ $status == "install ok installed" ]] || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "build.sh: installing ${missing[*]}" >&2
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  { "${sudo[@]}" apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2; } ||
    die "cannot install ${missing[*]} with apt-get"
fi

# Debian's cargo and rustc, explicitly: a rustup toolchain earlier in PATH is not what we test.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
# .cargo/config.toml (found from the manifest's directory, as cargo runs there) points crates-io
# at /usr/share/cargo/registry and forbids the network.
cd "$here"
/usr/bin/cargo build --release --offline --bins --target-dir "$out/tokio-target" ||
  die "cargo build failed (see above)"

for bin in echo_split udp_pingpong conn_counter chat; do
  cp -f "$out/tokio-target/release/$bin" "$out/tokio_$bin" || die "cannot copy $bin to $out"
done
echo "build.sh: built $out/tokio_{echo_split,udp_pingpong,conn_counter,chat}" >&2
