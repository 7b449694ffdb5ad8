#!/usr/bin/env bash
# Miri: the in-process cores under the interpreter, which reports undefined behaviour
# (out-of-bounds or misaligned accesses, Stacked Borrows aliasing violations, data
# races, leaks) in code the tests execute:
#   - shmkit-ring raw_spsc / raw_packed / raw_mpmc: the SPSC byte ring, a Queue's packed
#     records on it, and the MPMC slot queue over heap
#     buffers (model tests with few proptest cases, wrap-around at every offset,
#     corrupted positions and lengths, threads);
#   - shmkit-sync raw_lock: the robust lock's acquire/release with threads and the real
#     futex (rustix uses its libc backend under Miri, whose futex Miri emulates);
#   - the unit tests of shmkit-ring, shmkit-sync and shmkit-segment (those that map
#     segments, take OFD locks or read /proc are `#[cfg_attr(miri, ignore)]`).
#   - shmkit-pool's result slots (values written into uninitialised memory in any
#     order, handed back as a `Vec` or dropped).
# Everything that maps shared memory or starts processes cannot run under Miri (no mmap
# of files, no fork/exec); tests/cross_process.rs and tests/faults.rs cover that.
#
# MIRIFLAGS:
#   -Zmiri-isolation-error=warn-nobacktrace  proptest asks for the cwd to find its
#       failure-persistence file; under isolation that call now fails (and proptest
#       carries on) instead of aborting the test.
#   -Zmiri-permissive-provenance  rustix's libc futex call passes its timeout through an
#       integer-to-pointer cast; this silences the warning (does not hide UB in our code).
#   -Zmiri-disable-weak-memory-emulation  (raw_spsc only) the SPSC ring's length words
#       are atomics inside the data area, and a later lap writes payload bytes over an
#       old length word (never concurrently: ordered by head/tail). Such mixed atomic
#       and non-atomic accesses are allowed when they do not race, but Miri's store-buffer
#       emulation crashes on them (an internal error, "cannot have empty store buffer
#       when previous write was atomic", nightly 2026-05-19). Its data-race detector, which
#       would report a racing pair, stays on.
# Long mode by hand: MIRI_LONG=1 ci/miri.sh (every test of the three crates' test files
# Miri can run, and Tree Borrows as well as Stacked Borrows).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export MIRI_SYSROOT="${MIRI_SYSROOT:-$CARGO_TARGET_DIR/miri-sysroot}"
base_flags="-Zmiri-isolation-error=warn-nobacktrace -Zmiri-permissive-provenance"

if ! cargo +nightly miri --version >/dev/null 2>&1; then
  if ! rustup component add --toolchain nightly miri rust-src; then
    echo "miri: SKIPPED (could not install the nightly miri component)"
    exit 0
  fi
fi
cargo +nightly miri setup

log="$CARGO_TARGET_DIR/miri.log"
: >"$log"
run() {
  echo "+ MIRIFLAGS='$MIRIFLAGS' cargo +nightly miri test $*"
  # Miri's provenance and isolation notes are noise here; keep them in the log only.
  cargo +nightly miri test "$@" 2>&1 | tee -a "$log" | grep -vE '^(warning: operation rejected|    = help|    = note)' || return 1
}

export MIRIFLAGS="$base_flags -Zmiri-disable-weak-memory-emulation"
run -p shmkit-ring --test raw_spsc --test raw_packed
export MIRIFLAGS="$base_flags"
run -p shmkit-ring --test raw_mpmc
run -p shmkit-sync --test raw_lock
run -p shmkit-ring -p shmkit-sync -p shmkit-segment --lib
# The pool's result slots (uninitialised memory handed back as the result `Vec`).
run -p shmkit-pool --lib slots
if [ "${MIRI_LONG:-0}" != 0 ]; then
  export MIRIFLAGS="$base_flags -Zmiri-tree-borrows"
  run -p shmkit-ring --test raw_spsc --test raw_packed --test raw_mpmc
  run -p shmkit-sync --test raw_lock
  export MIRIFLAGS="$base_flags -Zmiri-many-seeds=0..8"
  run -p shmkit-ring --test raw_mpmc
  run -p shmkit-sync --test raw_lock
fi

counts=$(awk '/^test result: ok/ { p += $4; i += $8 } END { print p, i }' "$log")
passed=${counts% *}
ignored=${counts#* }
echo "miri: ${passed} tests passed, ${ignored} ignored (need mmap/processes), no UB reported, in $(( $(date +%s) - start )) s"
