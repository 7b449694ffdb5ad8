//! A word-count pipeline, the most common shape of a Python `multiprocessing` program:
//! the parent puts every line on a task queue *before* it reads a single result, two
//! worker processes count words and put results on a second queue, and everything
//! shuts down without sentinels.
//!
//! ```python
//! def worker(tasks, results):
//!     for line in iter(tasks.get, None):
//!         results.put(len(line.split()))
//!
//! tasks, results = Queue(), Queue()
//! workers = [Process(target=worker, args=(tasks, results)) for _ in range(2)]
//! for w in workers: w.start()
//! for line in lines: tasks.put(line)          # never blocks: Queue() is unbounded
//! for _ in workers: tasks.put(None)           # sentinels
//! total = sum(results.get() for _ in lines)
//! ```
//!
//! In shmkit the queues are unbounded too (`Queue::new()`), so the parent's 200 000
//! puts never block while nobody reads the results. Instead of sentinels: the parent
//! `close`s the task queue, so each worker's `get` ends with `Disconnected` once the
//! queue is drained (a handle that only gets is not a producer); each worker's results
//! handle goes away when it returns, so the parent's `get` ends with `Disconnected`
//! once both workers are done and every result is read.
//!
//! Run: `cargo run --release --example pipeline`. Prints
//! `200000 lines, 1399993 words (expected 1399993), 2 workers: [.., ..] lines`.

use shmkit::ring::{Error, Queue};

const LINES: u64 = 200_000;

/// Line `i` has `3 + i % 9` words.
fn line(i: u64) -> String {
    let words: Vec<String> = (0..3 + i % 9).map(|w| format!("w{i}x{w}")).collect();
    words.join(" ")
}

/// Count words until the task queue is closed and drained; return how many lines.
fn worker((tasks, results): (Queue<String>, Queue<u64>)) -> Result<u64, String> {
    let mut lines = 0;
    loop {
        match tasks.get() {
            Ok(line) => {
                results
                    .put(&(line.split_whitespace().count() as u64))
                    .map_err(|e| e.to_string())?;
                lines += 1;
            }
            // Every producer closed and the queue is drained: done.
            Err(Error::Disconnected) => return Ok(lines),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init();
    let tasks = Queue::<String>::new()?;
    let results = Queue::<u64>::new()?;
    let workers = (0..2)
        .map(|_| shmkit::process::spawn(worker, (tasks.clone(), results.clone())))
        .collect::<Result<Vec<_>, _>>()?;

    // Everything in before anything out: with a bounded queue this would deadlock.
    for i in 0..LINES {
        tasks.put(&line(i))?;
    }
    tasks.close(); // no more tasks: the workers end after the drain

    let mut total = 0;
    let mut count = 0;
    loop {
        match results.get() {
            Ok(words) => {
                total += words;
                count += 1;
            }
            Err(Error::Disconnected) => break, // both workers done, all results read
            Err(e) => return Err(e.into()),
        }
    }
    let per_worker = workers
        .into_iter()
        .map(|w| w.join())
        .collect::<Result<Result<Vec<u64>, String>, _>>()??;
    let expected: u64 = (0..LINES).map(|i| 3 + i % 9).sum();
    println!("{count} lines, {total} words (expected {expected}), 2 workers: {per_worker:?} lines");
    assert_eq!((count, total), (LINES, expected));
    Ok(())
}
