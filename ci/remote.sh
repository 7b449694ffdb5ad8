#!/usr/bin/env bash
# shmkit-remote beyond the default build (its own tests run in `cargo test --workspace`):
# the facade's `remote` feature and its example, and `rediss://` with the `tls` feature
# against a TLS redis-server the test starts (certificates made with openssl).
set -euxo pipefail
cargo clippy -p shmkit --features remote --example remote_pool -- -D warnings
cargo clippy -p shmkit-remote --features tls --all-targets -- -D warnings
cargo test -p shmkit-remote --features tls --test tls
