//! Per-task overhead of `shmkit-pool` — `map` of a trivial function (squaring a `u64`)
//! with chunk size 1 and with the default chunk size — against a pool whose tasks
//! travel over pipes (`support::PipePool`). Python's `Pool.map` on the same machine is
//! `benches/python/mp_anchors.py` (`pool_map_task_us_*`).
//!
//! Ids: `pool_chunksize1/{shmkit,pipe}/20000` and
//! `pool_default/{shmkit,pipe}/200000` (`pipe`: the pipe-based pool) — the task counts of the Python script;
//! throughput is in tasks, so criterion prints tasks/s, and the time per iteration
//! divided by the task count is the per-task overhead.
//!
//! Run: `cargo bench --bench pool`.

#[path = "support/mod.rs"]
mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use shmkit::pool::Pool;
use support::PipePool;

const WORKERS: usize = 2;
/// Chunks in flight per worker of the pipe pool: the shmkit pool's default prefetch.
const PIPE_WINDOW: usize = 16;
/// Tasks per `map` with chunk size 1, and with the default chunk size.
const TASKS_CHUNK1: u64 = 20_000;
const TASKS_DEFAULT: u64 = 200_000;

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn pool(c: &mut Criterion) {
    let shm = Pool::with_processes(WORKERS).expect("pool");
    let mut pipes = PipePool::spawn(WORKERS);
    for (group, tasks, chunk) in [
        ("pool_chunksize1", TASKS_CHUNK1, Some(1)),
        ("pool_default", TASKS_DEFAULT, None),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(tasks));
        let items: Vec<u64> = (0..tasks).collect();
        let expected: Vec<u64> = items.iter().map(|&x| square(x)).collect();
        // Python's default for `map`: tasks / (4 x workers), rounded up.
        let chunk = chunk.unwrap_or((tasks as usize).div_ceil(4 * WORKERS));
        assert_eq!(
            shm.map_chunked(square, items.clone(), chunk).expect("map"),
            expected
        );
        // Frames beyond a pipe's buffer allow one chunk in flight per worker: with more,
        // the pool would block writing the next chunk while that worker blocks writing
        // its answer (shmkit's pool puts big values in segments and never blocks).
        let window = if chunk * 8 > 16 << 10 { 1 } else { PIPE_WINDOW };
        assert_eq!(pipes.map_squares(&items, chunk, window), expected);
        g.bench_function(BenchmarkId::new("shmkit", tasks), |b| {
            b.iter(|| {
                shm.map_chunked(square, items.iter().copied(), chunk)
                    .expect("map")
            })
        });
        g.bench_function(BenchmarkId::new("pipe", tasks), |b| {
            b.iter(|| pipes.map_squares(&items, chunk, window))
        });
        g.finish();
    }
}

criterion_group!(benches, pool);

fn main() {
    shmkit::init();
    support::dispatch_child_role();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
