#!/usr/bin/env bash
# The side-by-side benches against iceoryx2, ipc-channel, shared_memory + raw_sync and
# interprocess live in their own workspace (benches/peers), so the root build and tests
# never compile those crates; this keeps them compiling. Running them is a manual step
# (docs/benchmarks.md, "Peers").
set -euxo pipefail
cd "$(dirname "$0")/.."
# One target dir for both workspaces unless the caller chose one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo bench --manifest-path benches/peers/Cargo.toml --no-run
