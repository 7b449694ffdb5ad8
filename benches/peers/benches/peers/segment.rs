//! `segment_lifecycle/{shmkit,shared_memory}/{4KiB,1MiB}`: the group of
//! `benches/segment.rs`, the same code (`benches/support/shm.rs`), run here so the
//! peers' report has it next to the others.

pub use crate::support::shm::segment_lifecycle as lifecycle;
