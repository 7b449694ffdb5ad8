//! Three children, each squaring its argument — the first `multiprocessing.Process`
//! example of the Python guide, in Rust.
//!
//! ```python
//! from multiprocessing import Process, Queue
//! def square(x, q): q.put(x * x)
//! ```
//!
//! Here the return value comes back from `join()` itself, no queue needed.
//!
//! Run: `cargo run --example process_basic`. Prints `[0, 1, 4]`, then
//! `all processes finished`.

fn square(x: u64) -> u64 {
    x * x
}

use shmkit::prelude::*;

fn main() -> Result<(), ProcessError> {
    // First line of main: when this binary is re-executed as a child, `init` runs the
    // requested function and exits instead of returning.
    shmkit::init();

    let children = (0..3)
        .map(|x| spawn(square, x))
        .collect::<Result<Vec<_>, _>>()?;
    let squares = children
        .into_iter()
        .map(|p| p.join())
        .collect::<Result<Vec<u64>, _>>()?;
    println!("{squares:?}");
    println!("all processes finished");
    Ok(())
}
