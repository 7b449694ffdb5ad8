//! Benchmarks of shmkit-remote (filled in below).
fn main() {}
