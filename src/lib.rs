//! shmkit facade (being written)
pub use shmkit_segment as segment;
