//! `multiprocessing.Lock` around a shared counter: two processes add 100 000 each.
//!
//! ```python
//! def work(counter, lock):
//!     for _ in range(100000):
//!         with lock: counter.value += 1
//! ```
//! Run: `cargo run --release --example lock_counter` — prints `200000`.

use shmkit::sync::Mutex;

const N: u64 = 100_000;

fn work(counter: Mutex<u64>) {
    for _ in 0..N {
        *counter.lock().expect("lock") += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let counter = Mutex::anonymous(0u64)?;
    let workers = (0..2)
        .map(|_| shmkit::process::spawn(work, counter.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    println!("{}", *counter.lock()?);
    Ok(())
}
