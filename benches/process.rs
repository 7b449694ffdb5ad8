//! Process benches: what it costs to start a Rust function in a child and get its
//! result back, and what it costs to hand that child an argument.
//!
//! - `spawn_join/{spawn,fork,command}/trivial`: start + join of a child that does
//!   nothing — shmkit's `Spawn` (re-execute this binary), shmkit's `Fork`, and plain
//!   `std::process::Command` of this same binary running a trivial role (the floor
//!   `Spawn` is built on).
//! - `args/{shmkit,pipe}/{8B,1MiB,64MiB}`: start a child, give it an N-byte argument,
//!   get its length back, join. `shmkit` passes it as a `spawn` argument (inline on the
//!   control socket up to 64 KiB, a sealed memfd above); `pipe` writes a length-prefixed
//!   frame into the child's stdin and reads an 8-byte answer from its stdout. Both start a
//!   process per iteration, so the difference between sizes is the transfer; building
//!   the payload stays outside the timed region (`iter_custom`). `shmkit_fork` is the
//!   same with `StartMethod::Fork`, where the encoded argument reaches the child through
//!   fork's copy-on-write memory and nothing is sent at all.
//!
//! Python's `Process` start+join on the same machine: `python3 benches/python/process_start.py`.
//!
//! Run: `cargo bench --bench process`.

mod support;

use std::hint::black_box;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmkit_process::StartMethod;
use support::{frame, size_label};

/// Role of a `Command` child of this bench binary (the shmkit children need no role:
/// `shmkit_process::init()` dispatches them).
const ROLE_ENV: &str = "SHMKIT_PROCESS_BENCH_ROLE";

/// Bytes that serde treats as one byte string (what `serde_bytes` does), so postcard
/// copies them in one `memcpy` instead of element by element — as a real user would.
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

fn trivial(_: ()) {}

fn length(blob: Blob) -> u64 {
    black_box(&blob.0);
    blob.0.len() as u64
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.sample_size(30);
    for (id, method) in [("spawn", StartMethod::Spawn), ("fork", StartMethod::Fork)] {
        g.bench_function(BenchmarkId::new(id, "trivial"), |b| {
            b.iter(|| {
                shmkit_process::Process::builder()
                    .start_method(method)
                    .spawn(trivial, ())
                    .expect("spawn")
                    .join()
                    .expect("join")
            })
        });
    }
    let exe = std::env::current_exe().expect("current_exe");
    g.bench_function(BenchmarkId::new("command", "trivial"), |b| {
        b.iter(|| {
            let status = Command::new(&exe)
                .env(ROLE_ENV, "exit")
                .status()
                .expect("spawn command");
            assert!(status.success());
        })
    });
    g.finish();
}

fn args(c: &mut Criterion) {
    let mut g = c.benchmark_group("args");
    g.sample_size(10);
    let exe = std::env::current_exe().expect("current_exe");
    for size in [8usize, 1 << 20, 64 << 20] {
        let label = size_label(size);
        let payload = vec![0xA5u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("shmkit", &label), &size, |b, &size| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let blob = Blob(payload.clone());
                    let t0 = Instant::now();
                    let n = shmkit_process::spawn(length, blob)
                        .expect("spawn")
                        .join()
                        .expect("join");
                    total += t0.elapsed();
                    assert_eq!(n, size as u64);
                }
                total
            })
        });
        g.bench_with_input(
            BenchmarkId::new("shmkit_fork", &label),
            &size,
            |b, &size| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let blob = Blob(payload.clone());
                        let t0 = Instant::now();
                        let n = shmkit_process::Process::builder()
                            .start_method(StartMethod::Fork)
                            .spawn(length, blob)
                            .expect("spawn")
                            .join()
                            .expect("join");
                        total += t0.elapsed();
                        assert_eq!(n, size as u64);
                    }
                    total
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("pipe", &label), &size, |b, &size| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut frame = Vec::with_capacity(frame::HEADER + size);
                for _ in 0..iters {
                    frame::encode(&mut frame, &payload);
                    let t0 = Instant::now();
                    let n = pipe_round(&exe, &frame);
                    total += t0.elapsed();
                    assert_eq!(n, size as u64);
                }
                total
            })
        });
    }
    g.finish();
}

/// Start a `length` child of this binary, write `frame` (one frame of
/// [`frame`], the format every pipe baseline uses) into its stdin, read its 8-byte answer, reap it.
fn pipe_round(exe: &std::path::Path, frame: &[u8]) -> u64 {
    let mut child = Command::new(exe)
        .env(ROLE_ENV, "length")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn pipe child");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(frame).expect("write frame");
    drop(stdin);
    let mut answer = [0u8; 8];
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_exact(&mut answer)
        .expect("read answer");
    assert!(child.wait().expect("wait").success());
    u64::from_le_bytes(answer)
}

/// The `Command` children's roles.
fn run_role(role: &str) -> ! {
    match role {
        "exit" => std::process::exit(0),
        "length" => {
            let mut stdin = std::io::stdin().lock();
            let len = frame::read_len(&mut stdin).expect("read length");
            let mut buf = Vec::new();
            frame::read_payload(&mut stdin, len, &mut buf).expect("read payload");
            black_box(&buf);
            let mut out = std::io::stdout().lock();
            out.write_all(&(buf.len() as u64).to_le_bytes())
                .expect("write answer");
            out.flush().expect("flush");
            std::process::exit(0)
        }
        other => panic!("unknown process bench role {other:?}"),
    }
}

criterion_group!(benches, spawn_join, args);

fn main() {
    // A `Spawn` child of this bench runs its function here and exits.
    shmkit_process::init();
    if let Ok(role) = std::env::var(ROLE_ENV) {
        run_role(&role);
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
