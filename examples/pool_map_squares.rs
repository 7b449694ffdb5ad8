//! A pool of four workers maps a function over a range — the first `Pool` example of
//! the Python guide, in Rust.
//!
//! ```python
//! from multiprocessing import Pool
//! def f(x): return x * x
//! with Pool(4) as p:
//!     print("results:", p.map(f, range(5)))
//! ```
//!
//! Run: `cargo run --example pool_map_squares`. Prints `results: [0, 1, 4, 9, 16]`.

use shmkit::pool::Pool;

fn square(x: u64) -> u64 {
    x * x
}

fn main() -> Result<(), shmkit::pool::Error> {
    // First line of main: the workers are this binary, re-executed.
    shmkit::init();

    let pool = Pool::with_processes(4)?;
    let results = pool.map(square, 0..5)?;
    println!("results: {results:?}");
    Ok(()) // dropping the pool stops and reaps its workers, like `with Pool(4) as p:`
}
