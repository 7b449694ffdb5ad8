#!/usr/bin/env bash
# Formatting and lints, exactly as CI runs them.
set -euxo pipefail
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
