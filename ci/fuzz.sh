#!/usr/bin/env bash
# Fuzz every reader of shared memory with cargo-fuzz (libFuzzer + AddressSanitizer,
# nightly): fuzz/fuzz_targets/*.rs feed fuzzer-chosen bytes to segment header validation
# and the inspectors (segment_open), the SPSC core with scribbles between operations
# (spsc_ring), the MPMC slots, sequences and producer table (mpmc_slots), the public SPSC
# Consumer/Producer over a real segment (ring_segment), the Dict table (dict_table) and
# a Queue item's ring bytes through the Queue codec, against postcard (queue_item).
# A crash, panic, hang (> 10 s on one input) or ASan report fails the step and leaves the
# input in $CARGO_TARGET_DIR/fuzz-work/artifacts/<target>/.
#
# CI mode: FUZZ_SECONDS (default 12) per target, 6 targets, ~72 s of fuzzing in all.
# Long mode by hand: FUZZ_SECONDS=600 ci/fuzz.sh   (or FUZZ_TARGETS="spsc_ring mpmc_slots").
# The corpus is kept in $CARGO_TARGET_DIR/fuzz-work/corpus/<target>/, so runs build on
# each other on one machine; a fresh CI machine starts from empty inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
seconds="${FUZZ_SECONDS:-12}"
targets="${FUZZ_TARGETS:-segment_open spsc_ring mpmc_slots ring_segment dict_table queue_item packed_ring}"
work="$CARGO_TARGET_DIR/fuzz-work"
fuzz_target_dir="$CARGO_TARGET_DIR/fuzz"   # the fuzz package's own build dir

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "+ cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked --target-dir "$CARGO_TARGET_DIR/cargo-fuzz-build"
fi
echo "+ cargo +nightly fuzz build"
CARGO_TARGET_DIR="$fuzz_target_dir" cargo +nightly fuzz build

summary=()
status=0
for t in $targets; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  echo "+ cargo +nightly fuzz run $t -- -max_total_time=$seconds"
  if CARGO_TARGET_DIR="$fuzz_target_dir" cargo +nightly fuzz run "$t" "$work/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log and $work/artifacts/$t/)"
    status=1
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5 || true
  fi
  execs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ { print $NF }' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  corpus=$(find "$work/corpus/$t" -type f | wc -l)
  summary+=("  $t: ${execs:-?} executions in ${seconds} s (${rate:-?}/s), ${cov:-cov: ?}, corpus $corpus inputs: $result")
done
# Segments the targets create are removed each round; a crash could leave one.
rm -f /dev/shm/shmkit-fuzz-* 2>/dev/null || true
printf '%s\n' "${summary[@]}"
echo "fuzz: $(wc -w <<<"$targets") targets x ${seconds} s, $([ $status = 0 ] && echo 'no crash' || echo 'CRASHES FOUND') in $(( $(date +%s) - start )) s"
exit $status
