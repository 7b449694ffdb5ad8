#!/usr/bin/env bash
# Every atomic goes through a crate's `primitive` module so that loom can swap it in
# (`--cfg loom`), as crossbeam and iceoryx2 do. clippy's disallowed-types cannot express
# this (the re-export *is* the std type), so this grep enforces it.
set -euo pipefail
hits=$(grep -rnE '(std|core)::sync::atomic' crates/*/src | grep -v '/primitive.rs:' || true)
if [ -n "$hits" ]; then
  echo "atomics used outside a primitive module:"
  echo "$hits"
  exit 1
fi
echo "all atomics come through primitive modules"
