//! A producer process puts 0..5 on a queue and then a sentinel; a consumer process
//! collects until it sees the sentinel (or the queue disconnects) — the
//! `multiprocessing.Queue` producer/consumer example of the Python guide.
//!
//! ```python
//! def producer(q):
//!     for i in range(5): q.put(i)
//!     q.put(None)
//! def consumer(q):
//!     out = []
//!     while (item := q.get()) is not None: out.append(item)
//!     return out
//! ```
//!
//! Run: `cargo run --example queue_sentinel`. Prints `[0, 1, 2, 3, 4]`.

use shmkit::prelude::*;
use std::time::Duration;

fn producer(q: Queue<Option<u32>>) {
    for i in 0..5 {
        q.put(&Some(i)).expect("put");
    }
    q.put(&None).expect("put sentinel");
}

fn consumer(q: Queue<Option<u32>>) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match q.get_timeout(Duration::from_secs(10)) {
            Ok(Some(i)) => got.push(i),
            Ok(None) | Err(RingError::Disconnected) => return got,
            Err(e) => panic!("consumer: {e}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let q = Queue::<Option<u32>>::anonymous(1 << 12)?;
    let c = spawn(consumer, q.clone())?;
    let p = spawn(producer, q.clone())?;
    // The parent puts nothing: close its handle so the consumer can see the end even
    // if the producer died before its sentinel.
    q.close();
    p.join()?;
    let got = c.join()?;
    println!("{got:?}");
    Ok(())
}
