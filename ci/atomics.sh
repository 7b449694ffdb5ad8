#!/usr/bin/env bash
# Every atomic goes through a crate's `primitive` module so that loom can swap it in
# (`--cfg shmkit_loom`), as crossbeam and iceoryx2 do. clippy's disallowed-types cannot express
# this (the re-export *is* the std type), so this grep enforces it.
set -euo pipefail
# Doc comments (`///`, `//!`) are exempt: their examples are a user's code, which names std's
# atomics (the `primitive` modules are crate-private).
hits=$(grep -rnE '(std|core)::sync::atomic' crates/*/src | grep -v '/primitive.rs:' \
  | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//[/!]' || true)
if [ -n "$hits" ]; then
  echo "atomics used outside a primitive module:"
  echo "$hits"
  exit 1
fi
echo "all atomics come through primitive modules"
# The loom switch is shmkit's own cfg: a user who sets `--cfg shmkit_loom` for their own loom
# tests must not change shmkit's behaviour (crossbeam's `crossbeam_loom`, tokio's habit).
bare=$(grep -rnE 'cfg\((not\()?loom\b|cfg\((any|all)\([^)]*\bloom\b|cfg_attr\(loom\b' crates/*/src crates/*/tests src || true)
if [ -n "$bare" ]; then
  echo "cfg(shmkit_loom) used where cfg(shmkit_loom) is meant:"
  echo "$bare"
  exit 1
fi
echo "the loom switch is cfg(shmkit_loom) everywhere"
