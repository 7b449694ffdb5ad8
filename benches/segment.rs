//! Segment benches: the cost of a segment's life (create + map + unlink) against the
//! requested `shared_memory` crate, and the first-touch bandwidth of a fresh 64 MiB
//! segment against pushing the same bytes through a pipe or a Unix socket to a child.
//!
//! Run: `cargo bench --bench segment`.

mod support;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use shmkit_segment::Segment;
use support::shm::{self, unique_name};
use support::{Baseline, Role, Transport, size_label};

fn touch_all(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr` is the payload base of a segment this process created and nobody
    // else has opened; it is valid for `len` bytes of writes.
    unsafe { std::ptr::write_bytes(ptr, 0xA5, len) };
}

fn first_touch(c: &mut Criterion) {
    const SIZE: usize = 64 << 20;
    let label = size_label(SIZE);
    let mut g = c.benchmark_group("first_touch");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("shmkit_segment", &label), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let seg = Segment::create(&unique_name("touch"), SIZE).expect("create");
                let t0 = Instant::now();
                touch_all(seg.as_ptr(), seg.len());
                total += t0.elapsed();
            }
            total
        })
    });
    // The same bytes into a segment whose pages are already mapped: what every write
    // after the first costs (page faults excluded).
    g.bench_function(BenchmarkId::new("shmkit_segment_warm", &label), |b| {
        let seg = Segment::create(&unique_name("warm"), SIZE).expect("create");
        touch_all(seg.as_ptr(), seg.len());
        b.iter(|| touch_all(seg.as_ptr(), seg.len()))
    });
    for (transport, id) in [
        (Transport::Pipe, "pipe"),
        (Transport::UnixSocket, "unix_socket"),
    ] {
        let mut peer = Baseline::spawn(transport, Role::Sink);
        let chunk = vec![0xA5u8; 1 << 20];
        g.bench_function(BenchmarkId::new(id, &label), |b| {
            b.iter(|| {
                for _ in 0..SIZE / chunk.len() {
                    peer.send(&chunk);
                }
                peer.sync();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, shm::segment_lifecycle, first_touch);

fn main() {
    support::dispatch_child_role();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
