//! shmkit-remote against the `redis` client itself, and against the local (shared
//! memory) Queue and Pool, on a `redis-server` this bench starts on a loopback port.
//!
//! - `remote_queue/{shmkit_remote,shmkit_remote_batch64,redis_bare,local_queue}/N`:
//!   N `u64` items put by one producer thread and taken by one consumer thread.
//!   `redis_bare` is the client alone: `XADD`, then `XREADGROUP COUNT 1 BLOCK` and
//!   `XACK` per item; `shmkit_remote` adds the `unfinished` counter (`HINCRBY`, for
//!   `join`) and the `XDEL` of each item taken, each in the same `MULTI` as its command;
//!   `batch64` is `put_many`/`get_many` of 64 (pipelined).
//! - `remote_pool_chunksize1/{remote_1w,remote_2w,remote_4w,local_2w}/N` and
//!   `remote_pool_default/...`: `map` of a trivial function over N items with 1, 2, 4
//!   worker processes (this binary re-run), and the local `shmkit_pool::Pool` with 2.
//!
//! Run: `cargo bench -p shmkit-remote --bench remote -- --warm-up-time 1 --measurement-time 2`
//! (needs `redis-server` on PATH; prints "skipped" otherwise).

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{BenchmarkId, Criterion, Throughput};
use shmkit_remote::{Pool, Queue, Worker};
use std::time::{Duration, Instant};

const QUEUE_ITEMS: u64 = 2_000;
const POOL_TASKS_CHUNK1: u64 = 2_000;
const POOL_TASKS_DEFAULT: u64 = 20_000;

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn serve((url, pool): (String, String)) -> u64 {
    shmkit_remote::register("square", square);
    Worker::new(&url, &pool).serve().expect("worker")
}

fn remote_queue_pair(url: &str, name: &str, n: u64, batch: usize) -> Duration {
    let q = Queue::<u64>::connect(url, name).expect("queue");
    let p = q.try_clone().expect("clone");
    let t = Instant::now();
    let producer = std::thread::spawn(move || {
        let items: Vec<u64> = (0..n).collect();
        if batch == 1 {
            for i in &items {
                p.put(i).expect("put");
            }
        } else {
            for c in items.chunks(batch) {
                p.put_many(c).expect("put_many");
            }
        }
    });
    let mut got = 0;
    while got < n {
        if batch == 1 {
            q.get().expect("get");
            got += 1;
        } else {
            got += q
                .get_many(batch, Duration::from_secs(10))
                .expect("get_many")
                .len() as u64;
        }
    }
    producer.join().expect("producer");
    t.elapsed()
}

fn bare_pair(url: &str, key: &str, n: u64) -> Duration {
    let client = redis::Client::open(url).expect("url");
    let mut c = client.get_connection().expect("connect");
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c);
    let mut pc = client.get_connection().expect("connect");
    let key2 = key.to_owned();
    let t = Instant::now();
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            let _: String = redis::cmd("XADD")
                .arg(&key2)
                .arg("*")
                .arg("d")
                .arg(postcard::to_allocvec(&i).expect("encode"))
                .query(&mut pc)
                .expect("xadd");
        }
    });
    let mut got = 0;
    while got < n {
        let v: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(1000)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query(&mut c)
            .expect("xreadgroup");
        // [[key, [[id, [f, v]]]]]
        let redis::Value::Array(streams) = v else {
            continue;
        };
        let redis::Value::Array(kv) = &streams[0] else {
            panic!("shape")
        };
        let redis::Value::Array(entries) = &kv[1] else {
            panic!("shape")
        };
        let redis::Value::Array(e) = &entries[0] else {
            panic!("shape")
        };
        let redis::Value::BulkString(id) = &e[0] else {
            panic!("shape")
        };
        let redis::Value::Array(fields) = &e[1] else {
            panic!("shape")
        };
        let redis::Value::BulkString(d) = &fields[1] else {
            panic!("shape")
        };
        let _: u64 = postcard::from_bytes(d).expect("decode");
        let _: i64 = redis::cmd("XACK")
            .arg(key)
            .arg("g")
            .arg(&id[..])
            .query(&mut c)
            .expect("xack");
        got += 1;
    }
    producer.join().expect("producer");
    t.elapsed()
}

fn local_pair(n: u64) -> Duration {
    let q = shmkit_ring::Queue::<u64>::anonymous(1 << 16).expect("queue");
    let p = q.try_clone().expect("clone");
    let t = Instant::now();
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            p.put(&i).expect("put");
        }
    });
    for _ in 0..n {
        q.get().expect("get");
    }
    producer.join().expect("producer");
    t.elapsed()
}

fn queue(c: &mut Criterion, url: &str) {
    let mut g = c.benchmark_group("remote_queue");
    g.sample_size(10);
    g.throughput(Throughput::Elements(QUEUE_ITEMS));
    let mut run = 0u32;
    let mut fresh = |tag: &str| {
        run += 1;
        format!("bench-{tag}-{}-{run}", std::process::id())
    };
    g.bench_function(BenchmarkId::new("shmkit_remote", QUEUE_ITEMS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| remote_queue_pair(url, &fresh("q"), QUEUE_ITEMS, 1))
                .sum()
        })
    });
    g.bench_function(
        BenchmarkId::new("shmkit_remote_batch64", QUEUE_ITEMS),
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| remote_queue_pair(url, &fresh("qb"), QUEUE_ITEMS, 64))
                    .sum()
            })
        },
    );
    g.bench_function(BenchmarkId::new("redis_bare", QUEUE_ITEMS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| bare_pair(url, &fresh("bare"), QUEUE_ITEMS))
                .sum()
        })
    });
    g.bench_function(BenchmarkId::new("local_queue", QUEUE_ITEMS), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| local_pair(QUEUE_ITEMS)).sum())
    });
    g.finish();
    let mut raw = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("c");
    let _: () = redis::cmd("FLUSHALL").query(&mut raw).expect("flush");
}

fn pool(c: &mut Criterion, url: &str) {
    shmkit_remote::register("square", square);
    let local = shmkit_pool::Pool::with_processes(2).expect("local pool");
    for (group, tasks, chunk) in [
        ("remote_pool_chunksize1", POOL_TASKS_CHUNK1, Some(1)),
        ("remote_pool_default", POOL_TASKS_DEFAULT, None),
    ] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10);
        g.throughput(Throughput::Elements(tasks));
        let items: Vec<u64> = (0..tasks).collect();
        for workers in [1usize, 2, 4] {
            let name = format!("bench-pool-{workers}-{}", std::process::id());
            let pool = Pool::connect(url, &name).expect("pool");
            let procs: Vec<_> = (0..workers)
                .map(|_| {
                    shmkit_process::spawn(serve, (url.to_owned(), name.clone())).expect("spawn")
                })
                .collect();
            let map = |p: &Pool| match chunk {
                Some(c) => p
                    .map_chunked(square, items.iter().copied(), c)
                    .expect("map"),
                None => p.map(square, items.iter().copied()).expect("map"),
            };
            assert_eq!(map(&pool)[3], 9);
            g.bench_function(BenchmarkId::new(format!("remote_{workers}w"), tasks), |b| {
                b.iter(|| map(&pool))
            });
            pool.stop_workers().expect("stop");
            for p in procs {
                let _ = p.join();
            }
            pool.destroy().expect("destroy");
        }
        g.bench_function(BenchmarkId::new("local_2w", tasks), |b| {
            b.iter(|| match chunk {
                Some(c) => local
                    .map_chunked(square, items.iter().copied(), c)
                    .expect("map"),
                None => local.map(square, items.iter().copied()).expect("map"),
            })
        });
        g.finish();
    }
}

fn main() {
    shmkit_process::init();
    let Some(srv) = support::server() else { return };
    let url = srv.url();
    let mut c = Criterion::default().configure_from_args();
    queue(&mut c, &url);
    pool(&mut c, &url);
    c.final_summary();
}
