//! A tokio program hands jobs to worker processes over shmkit queues and awaits their
//! results, while the same runtime keeps serving other tasks (here a ticker standing in
//! for a server's connections): no thread is parked per waiting call.
//!
//! Three worker processes take jobs from one queue and put `(job, result)` on another;
//! the async side puts the jobs (`put(..).await`: the jobs queue is bounded, so it waits
//! while the workers are behind), then awaits the results (`get().await`). Closing the
//! jobs queue ends the workers' loops; once they are gone the results queue reports
//! `Disconnected`, which ends ours.
//!
//! Run: `cargo run --features tokio --example async_server`. Prints the sum of the
//! results and how often the ticker ran meanwhile.

use shmkit::prelude::*;
use shmkit::tokio::Async;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A worker process: squares job numbers until the jobs queue is closed and drained.
fn worker((jobs, results): (Queue<u64>, Queue<(u64, u64)>)) -> u64 {
    let mut done = 0;
    while let Ok(n) = jobs.get() {
        // Stand-in for real work.
        std::thread::sleep(Duration::from_micros(200));
        results.put(&(n, n * n)).expect("put result");
        done += 1;
    }
    done
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let jobs = Queue::<u64>::builder().maxsize(16).create()?;
    let results = Queue::<(u64, u64)>::new()?;
    let workers = (0..3)
        .map(|_| spawn(worker, (jobs.clone(), results.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    // This handle only takes results: it does not keep the results queue open.
    let (jobs, results) = (Async::new(jobs), Async::new(results));

    // Another task on the same runtime, served while we wait for the workers.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let n = 500u64;
    let feed = async {
        for i in 0..n {
            jobs.put(&i).await?;
        }
        jobs.close(); // no more jobs: the workers stop after the drain
        Ok::<_, RingError>(())
    };
    let collect = async {
        let (mut count, mut sum) = (0u64, 0u64);
        loop {
            match tokio::time::timeout(Duration::from_secs(30), results.get()).await? {
                Ok((_, square)) => {
                    count += 1;
                    sum += square;
                }
                Err(RingError::Disconnected) => break, // every worker is gone
                Err(e) => return Err(e.into()),
            }
        }
        Ok::<_, Box<dyn std::error::Error>>((count, sum))
    };
    let (fed, collected) = tokio::join!(feed, collect);
    fed?;
    let (count, sum) = collected?;
    ticker.abort();

    let mut per_worker = Vec::new();
    for w in workers {
        per_worker.push(Async::new(w).join().await?);
    }
    assert_eq!(count, n);
    assert_eq!(sum, (0..n).map(|i| i * i).sum::<u64>());
    println!(
        "{count} results, sum of squares {sum}; jobs per worker {per_worker:?}; \
         the ticker ran {} times meanwhile",
        ticks.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init(); // first line of main: lets this binary act as a worker process
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}
