#!/usr/bin/env bash
# Fuzzes every parser for SECONDS each (default 30) with libFuzzer: the fuzz preset (clang,
# AddressSanitizer + UBSan), targets from tests/fuzz/. Installs what is missing first.
#   bash scripts/fuzz.sh        # 30 s per target
#   bash scripts/fuzz.sh 600    # longer runs find deeper inputs
#   bash scripts/fuzz.sh 60 -max_len=256   # further arguments go to every libFuzzer run
# Exit 1 when a target crashed or broke a property; its input is then copied into
# tests/fuzz/corpus/<target>/, where ctest replays it (fuzz_replay.<target>) from then on:
# commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift $(($# > 0))
targets=(fuzz_line_framer fuzz_chat_protocol fuzz_udp_wire fuzz_endpoint)

# clang is the compiler libFuzzer comes with; Debian ships its runtime (libclang_rt.fuzzer)
# in libclang-rt-14-dev, which clang only recommends, and setup.sh installs no recommends.
bash scripts/setup.sh clang libclang-rt-14-dev
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

# libFuzzer writes every new interesting input into its first corpus directory. That one lives
# in build/ and grows from run to run; the committed seeds (second directory) are only read.
# Committing all generated inputs would bloat the repository; only failures are kept.
work=build/fuzz/run
status=0
for target in "${targets[@]}"; do
  rm -rf "${work}/crashes/${target}"  # only this run's failures get copied below
  mkdir -p "${work}/corpus/${target}" "${work}/crashes/${target}"
  log=${work}/${target}.log
  # -timeout: an input that takes 10 s is a hang worth keeping. ASan's leak check stays on.
  if build/fuzz/bin/"${target}" "${work}/corpus/${target}" "tests/fuzz/corpus/${target}" \
       -max_total_time="${seconds}" -timeout=10 -print_final_stats=1 \
       -artifact_prefix="${work}/crashes/${target}/" "$@" >"${log}" 2>&1; then
    # The last status line: runs, coverage (cov: edges, ft: features), exec/s.
    echo "${target}: $(grep -E '^#[0-9]+' "${log}" | tail -1)"
  else
    echo "${target}: FAILED, see ${log}" >&2
    grep -E 'ERROR|property violated|SUMMARY' "${log}" | head -5 >&2 || true
    for artifact in "${work}/crashes/${target}"/*; do
      [[ -f ${artifact} ]] || continue
      cp "${artifact}" "tests/fuzz/corpus/${target}/"
      echo "  kept as regression input: tests/fuzz/corpus/${target}/$(basename "${artifact}")" >&2
    done
    status=1
  fi
done
exit "${status}"
