#!/usr/bin/env bash
# shmkit-async beyond the default build (its own tests run in `cargo test --workspace`, its
# loom model in ci/loom.sh): the facade's `tokio` feature, and its example run to the end
# (a tokio program feeding three worker processes; it asserts its own results).
set -euxo pipefail
cargo clippy -p shmkit --features tokio --all-targets -- -D warnings
cargo run -p shmkit --features tokio --example async_server
