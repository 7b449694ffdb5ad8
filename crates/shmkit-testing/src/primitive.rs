//! The atomics this crate uses (ci/atomics.sh wants every atomic under `crates/*/src` to
//! come through a `primitive` module; loom never checks this crate, so they are std's).

pub(crate) use std::sync::atomic::{AtomicU32, Ordering};
