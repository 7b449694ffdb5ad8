#!/usr/bin/env bash
# The README's test command, plus the doc tests it already includes.
set -euxo pipefail
cargo test --workspace
