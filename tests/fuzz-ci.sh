#!/usr/bin/env bash
# CI fuzzing: every nfrs-fuzz target (restore, argv, scenario, packet, line, control) runs for
# 60 s (NFRS_FUZZ_CI_SECONDS) from its corpus kept in crates/fuzz/corpus/, release build, two
# targets at a time. Fails on any crash, hang or property break (the fuzzer exits non-zero; the
# input is saved under crates/fuzz/crashes/ and printed). The seed is the date (NFRS_FUZZ_SEED
# overrides it) so each day explores new mutations; a failure prints the seed to repeat it:
#   target/release/nfrs-fuzz TARGET --seconds 60 --seed SEED
# Usage: tests/fuzz-ci.sh [TARGET...]   (default: all six; ~3.5 min on 2 cores plus the build)
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${NFRS_FUZZ_CI_SECONDS:-60}"
seed="${NFRS_FUZZ_SEED:-$(date -u +%Y%m%d)}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(restore argv scenario packet line control)

target_dir="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p nfrs-fuzz
fuzz="$(realpath "$target_dir/release/nfrs-fuzz")"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

failed=()
run_one() {
  "$fuzz" "$1" --seconds "$secs" --seed "$seed" >"$logs/$1.log" 2>&1
}
i=0
while [ $i -lt ${#targets[@]} ]; do
  pids=()
  names=()
  for t in "${targets[@]:$i:2}"; do
    run_one "$t" &
    pids+=($!)
    names+=("$t")
  done
  for k in "${!pids[@]}"; do
    t="${names[$k]}"
    if wait "${pids[$k]}"; then
      grep "^nfrs-fuzz $t:" "$logs/$t.log" || true
    else
      echo "fuzz-ci: FAIL: $t (exit $?; seed $seed)"
      head -c 20000 "$logs/$t.log"
      failed+=("$t")
    fi
  done
  i=$((i + 2))
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-ci: FAIL: ${failed[*]} (inputs saved under crates/fuzz/crashes/)"
  exit 1
fi
echo "fuzz-ci: ok: ${targets[*]}, ${secs} s each, seed $seed, no findings"
