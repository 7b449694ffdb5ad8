#!/usr/bin/env bash
# AddressSanitizer (nightly, -Zsanitizer=address): a scribbler process writes random
# values into a live SPSC ring's positions, counters, side states and length words while
# this process sends, receives (copying and zero-copy) and re-takes the consumer role
# (crates/shmkit-ring/tests/asan_scribbler.rs). Every access the ring makes is checked by
# ASan: the reader must answer Corrupted, never touch a byte outside the mapping or its
# buffers. Then the ring and sync cross-process tests under ASan (real processes, SIGKILL).
#
# CI mode: SCRIBBLE_MS=3000 (the scribbler runs 3 s) + the two cross_process suites.
# Long mode by hand: SCRIBBLE_MS=60000 ASAN_LONG=1 ci/asan.sh  (adds the faults suites
# of ring and sync).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/asan"
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
# Leak checking would flag the test harness's and the children's deliberate exits
# (a SIGKILLed child never frees); out-of-bounds and use-after-free stay fatal.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export SCRIBBLE_MS="${SCRIBBLE_MS:-3000}"
target=x86_64-unknown-linux-gnu
log="$CARGO_TARGET_DIR/asan.log"
mkdir -p "$CARGO_TARGET_DIR"
: >"$log"

run() {
  echo "+ RUSTFLAGS=$RUSTFLAGS cargo +nightly test --target $target $*"
  cargo +nightly test --target "$target" "$@" 2>&1 | tee -a "$log" \
    | grep -E '^(test result|scribbler:|error|.*ERROR: AddressSanitizer)' || true
  [ "${PIPESTATUS[0]}" = 0 ]
}

run -p shmkit-ring --test asan_scribbler -- --nocapture
run -p shmkit-ring --test cross_process
run -p shmkit-sync --test cross_process
if [ "${ASAN_LONG:-0}" != 0 ]; then
  run -p shmkit-ring --test faults
  run -p shmkit-sync --test faults
fi

if grep -q 'ERROR: AddressSanitizer' "$log"; then
  echo "asan: AddressSanitizer reported an error (see $log)"
  exit 1
fi
passed=$(awk '/^test result: ok/ { p += $4 } END { print p + 0 }' "$log")
echo "asan: ${passed} tests passed under AddressSanitizer, no report; $(grep -h '^scribbler:' "$log" | head -1) (in $(( $(date +%s) - start )) s)"
