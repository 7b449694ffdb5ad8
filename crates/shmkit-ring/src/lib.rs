//! Lock-free ring buffers in shared memory (being written).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod primitive;
pub mod raw;
