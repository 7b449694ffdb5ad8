//! Dict benches (issue 21): per-operation cost of `get` and `insert` at 100, 10 000 and
//! 1 000 000 entries, for `u64 -> u64` and `String -> small struct`; and reads per second
//! of reader processes while another process writes.
//!
//! - `dict_get/{u64_u64,string_struct}/<entries>`: a `get` of a random present key.
//! - `dict_insert/{u64_u64,string_struct}/<entries>`: an `insert` replacing the value
//!   of a random present key (the size stays put; the replaced records' compaction is
//!   included, amortised).
//! - `dict_readers/<readers>/1M`: `get`s spread over 1 or 2 reader processes while a
//!   third process replaces values (100 every millisecond); elements/s is the readers'
//!   total.
//!
//! The fill rate (fresh inserts from empty, growth included) is printed while setting up.
//! Python's `Manager().dict()` at the same sizes: `python3 benches/python/dict_manager.py`.
//!
//! Run: `cargo bench --bench dict -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use shmkit_process::spawn;
use shmkit_sync::{Dict, Event, Handle};

const SIZES: [u64; 3] = [100, 10_000, 1_000_000];

/// The small struct of the `String -> struct` case.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Item {
    id: u64,
    score: f64,
    flags: u32,
}

fn item(i: u64) -> Item {
    Item {
        id: i,
        score: i as f64 * 0.5,
        flags: i as u32 & 0xff,
    }
}

fn skey(i: u64) -> String {
    format!("key-{i:08}")
}

/// xorshift64*: the random key sequence (the same in every run).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn fill<K, V>(what: &str, n: u64, key: impl Fn(u64) -> K, value: impl Fn(u64) -> V) -> Dict<K, V>
where
    K: serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let d = Dict::anonymous().expect("dict");
    let t0 = Instant::now();
    for i in 0..n {
        d.insert(key(i), value(i)).expect("insert");
    }
    let per = t0.elapsed() / n as u32;
    eprintln!(
        "fill {what}/{n}: {per:?} per fresh insert (growth included), generation {}",
        d.generation()
    );
    d
}

fn get_and_insert(c: &mut Criterion) {
    for n in SIZES {
        let d = fill("u64_u64", n, |i| i, |i| i * 7);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut g = c.benchmark_group("dict_get");
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("u64_u64", n), &n, |b, &n| {
            b.iter(|| black_box(d.get(&rng.below(n)).expect("get")))
        });
        // The machine's floor for a random lookup in a table this size: an in-process
        // std HashMap (same key sequence; no encoding, no shared memory).
        let floor: std::collections::HashMap<u64, u64> = (0..n).map(|i| (i, i * 7)).collect();
        g.bench_with_input(BenchmarkId::new("std_hashmap_u64_u64", n), &n, |b, &n| {
            b.iter(|| black_box(floor.get(&rng.below(n))))
        });
        drop(floor);
        g.finish();
        let mut g = c.benchmark_group("dict_insert");
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("u64_u64", n), &n, |b, &n| {
            b.iter(|| {
                let k = rng.below(n);
                black_box(d.insert(k, k ^ 1).expect("insert"))
            })
        });
        g.finish();
        drop(d);

        // Keys are formatted on the fly (about 50 ns, included): a table of a million
        // Strings would add its own cache misses to every lookup.
        let d = fill("string_struct", n, skey, item);
        let mut g = c.benchmark_group("dict_get");
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("string_struct", n), &n, |b, &n| {
            b.iter(|| black_box(d.get(&skey(rng.below(n))).expect("get")))
        });
        g.finish();
        let mut g = c.benchmark_group("dict_insert");
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("string_struct", n), &n, |b, &n| {
            b.iter(|| {
                let i = rng.below(n);
                black_box(d.insert(skey(i), item(i)).expect("insert"))
            })
        });
        g.finish();
    }
}

type Table = Dict<u64, u64>;

/// Reader process: wait for `go`, do `iters` gets of random keys below `n`, return the
/// time they took in nanoseconds.
fn reader(args: (Handle<Table>, Handle<Event>, u64, u64, u64)) -> u64 {
    let (h, go, iters, n, seed) = args;
    let d = h.open().expect("open");
    let go = go.open().expect("go");
    let mut rng = Rng(seed | 1);
    d.get(&0).expect("map the table");
    assert!(go.wait_timeout(Duration::from_secs(60)), "go");
    let t0 = Instant::now();
    for _ in 0..iters {
        black_box(d.get(&rng.below(n)).expect("get"));
    }
    t0.elapsed().as_nanos() as u64
}

/// Writer process: replace random values until `stop`, 100 per millisecond (so that on
/// a 2-core machine the writer does not take a whole core from the readers).
fn writer(args: (Handle<Table>, Handle<Event>, u64)) -> u64 {
    let (h, stop, n) = args;
    let d = h.open().expect("open");
    let stop = stop.open().expect("stop");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut writes = 0;
    while !stop.is_set() {
        for _ in 0..100 {
            let k = rng.below(n);
            d.insert(k, k + writes).expect("insert");
            writes += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    writes
}

fn readers_while_writing(c: &mut Criterion) {
    let n = 1_000_000;
    let d = fill("u64_u64 (readers)", n, |i| i, |i| i);
    let stop = Event::anonymous().expect("event");
    let mut w = spawn(writer, (d.handle(), stop.handle(), n)).expect("spawn writer");
    let mut g = c.benchmark_group("dict_readers");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    for readers in [1u64, 2] {
        g.bench_with_input(
            BenchmarkId::new(format!("{readers}"), "1M"),
            &readers,
            |b, &r| {
                b.iter_custom(|iters| {
                    let go = Event::anonymous().expect("event");
                    let per = iters.div_ceil(r);
                    let kids: Vec<_> = (0..r)
                        .map(|i| {
                            spawn(reader, (d.handle(), go.handle(), per, n, i + 7)).expect("spawn")
                        })
                        .collect();
                    // Let the readers open and map the dict before the clock starts.
                    std::thread::sleep(Duration::from_millis(50));
                    go.set();
                    let slowest = kids
                        .into_iter()
                        .map(|mut k| k.join_timeout(Duration::from_secs(120)).expect("reader"))
                        .max()
                        .unwrap_or(0);
                    // `per * r` gets in `slowest`: scale to `iters`.
                    Duration::from_nanos((slowest as f64 * iters as f64 / (per * r) as f64) as u64)
                })
            },
        );
    }
    g.finish();
    stop.set();
    let writes = w.join_timeout(Duration::from_secs(60)).expect("writer");
    eprintln!("writer replaced {writes} values meanwhile");
}

criterion_group!(benches, get_and_insert, readers_while_writing);

fn main() {
    shmkit_process::init();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
