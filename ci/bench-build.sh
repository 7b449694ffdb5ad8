#!/usr/bin/env bash
# Benches must keep compiling; running them is a manual step (see docs/benchmarks.md).
set -euxo pipefail
cargo bench --workspace --no-run
