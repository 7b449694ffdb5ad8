//! The same job on a local `Pool` and on a `remote::Pool`: moving to many hosts is a
//! change of constructor (plus naming the function, since no code travels).
//!
//! ```python
//! from multiprocessing import Pool          # one machine
//! from ray.util.multiprocessing import Pool # a cluster: same calls
//! ```
//!
//! Run, with a `redis-server` listening on 127.0.0.1:6379 (`apt-get install -y
//! redis-server`; or set `SHMKIT_REDIS_URL`):
//!
//! ```text
//! cargo run --features remote --example remote_pool
//! ```
//!
//! It prints the local results, starts two worker processes of its own, prints the same
//! results from the remote pool, and stops its workers.
//!
//! **Workers on other hosts**: copy this binary there and run
//! `remote_pool worker redis://user:password@queue-host:6379` as many times as you like
//! (a systemd unit, a Kubernetes Deployment, `ssh host ./remote_pool worker ...`). A
//! worker serves until `Pool::stop_workers`; one killed mid-task costs that task
//! (`WorkerDied` after `reclaim_after`, or a retry with `retries(n)`), nothing else.
//! Open the server to other hosts only with an ACL user and TLS (`docs/remote.md`).

use shmkit::pool::Pool;
use shmkit::remote;

fn square(x: u64) -> u64 {
    x * x
}

/// The worker role: register the functions, serve the pool.
fn run_worker((url, pool): (String, String)) -> Result<(), String> {
    remote::register("square", square);
    remote::worker(&url, &pool).map_err(|e| e.to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmkit::init(); // first line of main: local workers are this binary, re-executed
    let url = std::env::var("SHMKIT_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        let url = args.get(2).cloned().unwrap_or(url);
        return Ok(run_worker((url, "remote-pool-example".into()))?);
    }

    // One machine.
    let pool = Pool::with_processes(2)?;
    println!("local:  {:?}", pool.map(square, 0..10)?);

    // Any number of machines: the same calls.
    remote::register("square", square);
    let pool = remote::Pool::connect(&url, "remote-pool-example")?;
    pool.resume_workers()?; // clear a stop flag left by an earlier run
    let workers = (0..2)
        .map(|_| shmkit::process::spawn(run_worker, (url.clone(), "remote-pool-example".into())))
        .collect::<Result<Vec<_>, _>>()?;
    println!("remote: {:?}", pool.map(square, 0..10)?);

    pool.stop_workers()?;
    for w in workers {
        w.join()??;
    }
    Ok(())
}
