#!/usr/bin/env bash
# Model-check the lock-free and lock algorithms with loom (`--cfg shmkit_loom` swaps every
# atomic, and the futex, for loom's models). A separate target dir keeps the main build
# cache intact.
set -euxo pipefail
export RUSTFLAGS="--cfg shmkit_loom"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
cargo test --release -p shmkit-sync --test loom_mutex --test loom_event --test loom_semaphore --test loom_wake --test loom_condvar
if ls crates/shmkit-ring/tests/loom_*.rs >/dev/null 2>&1; then
  tests=$(for f in crates/shmkit-ring/tests/loom_*.rs; do printf -- '--test %s ' "$(basename "$f" .rs)"; done)
  # shellcheck disable=SC2086
  cargo test --release -p shmkit-ring $tests
fi
# The async waiter's protocol (announce, hand the word to the waker thread, be woken).
cargo test --release -p shmkit-async --test loom_waiter
