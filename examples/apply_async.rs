//! Three tasks submitted without waiting, collected after `close` and `join` — Python's
//! `apply_async` example.
//!
//! ```python
//! from multiprocessing import Pool
//! def hello(i): return f"hello {i}"
//! with Pool(2) as pool:
//!     multiple = [pool.apply_async(hello, (i,)) for i in range(3)]
//!     pool.close(); pool.join()
//!     for res in multiple:
//!         print("multi_result :", res.get())
//! ```
//!
//! Run: `cargo run --example apply_async`. Prints `multi_result : hello 0`,
//! `multi_result : hello 1`, `multi_result : hello 2`, one per line.

use shmkit::pool::Pool;

fn hello(i: u32) -> String {
    format!("hello {i}")
}

fn main() -> Result<(), shmkit::pool::Error> {
    shmkit::init();

    let pool = Pool::with_processes(2)?;
    let pending = (0..3)
        .map(|i| pool.apply_async(hello, i))
        .collect::<Result<Vec<_>, _>>()?;
    pool.close(); // no more tasks
    pool.join()?; // wait until the workers are done and gone
    for result in pending {
        println!("multi_result : {}", result.get()?);
    }
    Ok(())
}
