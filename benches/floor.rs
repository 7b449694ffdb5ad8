//! The in-process floor the cross-process figures are read against: what two threads of
//! one process get without any shared-memory segment or syscall.
//!
//! - `floor/crossbeam_channel/8B`: streaming `u64`s through a bounded crossbeam channel
//!   between two threads (time per message).
//! - `floor/rtrb_threads/{8B,64B}`: streaming 8- and 64-byte messages (one per push,
//!   copied in and out) through rtrb's wait-free SPSC ring between two threads: the
//!   in-process target for shmkit's `BusyPoll` SPSC ring (`throughput/spsc_busy_poll`).
//! - `floor/probe_ring/{8B,64B}`: the same streams through the plainest spinning SPSC
//!   ring this bench can write: each slot a sequence word (published last, Release) and
//!   the payload, the consumer polls the slot it needs and stores its position only
//!   every 64 messages, the producer reads that position only when it would lap. No
//!   fence, no sleeper check, no validation, no segment: what the two vCPUs allow for
//!   the record-is-the-signal design `shmkit`'s ring follows (issue 17's "probe ring").
//! - `floor/cacheline_threads/8B`: a round trip of one cache line between two threads
//!   (an atomic ping-pong), the in-process twin of `roundtrip/cacheline/8B`.
//! - `floor/probe_roundtrip/8B`: an 8-byte echo through two probe rings (one each way),
//!   one message in flight: what the two vCPUs allow for a spinning ring round trip
//!   (`roundtrip/ring_busy_poll/8B`), against the bare cache line above.
//! - `floor/memcpy/{64KiB,1MiB}`: copy bandwidth of this machine, the ceiling of any
//!   copying transport.
//!
//! Run: `cargo bench --bench floor`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");

    g.throughput(Throughput::Bytes(8));
    g.bench_function(BenchmarkId::new("crossbeam_channel", "8B"), |b| {
        b.iter_custom(|iters| {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(4096);
            let sink = std::thread::spawn(move || {
                let mut sum = 0u64;
                while let Ok(v) = rx.recv() {
                    sum = sum.wrapping_add(v);
                }
                sum
            });
            let t0 = Instant::now();
            for i in 0..iters {
                tx.send(i).expect("send");
            }
            drop(tx);
            std::hint::black_box(sink.join().expect("sink"));
            t0.elapsed()
        })
    });

    rtrb_stream::<8>(&mut g, "8B");
    g.throughput(Throughput::Bytes(64));
    rtrb_stream::<64>(&mut g, "64B");
    g.throughput(Throughput::Bytes(8));
    probe_stream::<1>(&mut g, "8B");
    g.throughput(Throughput::Bytes(64));
    probe_stream::<8>(&mut g, "64B");
    g.throughput(Throughput::Bytes(8));
    probe_roundtrip(&mut g);

    g.bench_function(BenchmarkId::new("cacheline_threads", "8B"), |b| {
        b.iter_custom(|iters| {
            // Even values: the main thread's turn; odd: the echo thread's. Both spin,
            // bounded by `iters` round trips.
            let word = Arc::new(AtomicU64::new(0));
            let echo = {
                let word = Arc::clone(&word);
                std::thread::spawn(move || {
                    for i in 0..iters {
                        while word.load(Ordering::Acquire) != 2 * i + 1 {
                            std::hint::spin_loop();
                        }
                        word.store(2 * i + 2, Ordering::Release);
                    }
                })
            };
            let t0 = Instant::now();
            for i in 0..iters {
                word.store(2 * i + 1, Ordering::Release);
                while word.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
            let elapsed = t0.elapsed();
            echo.join().expect("echo");
            elapsed
        })
    });

    for size in [64 << 10, 1 << 20] {
        let src = vec![0x5au8; size];
        let mut dst = vec![0u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        let label = if size == 1 << 20 { "1MiB" } else { "64KiB" };
        g.bench_function(BenchmarkId::new("memcpy", label), |b| {
            b.iter(|| {
                dst.copy_from_slice(std::hint::black_box(&src));
                std::hint::black_box(&dst);
            })
        });
    }
    g.finish();
}

/// `iters` messages of `N` bytes through an rtrb ring to a thread that copies each out;
/// both sides spin when full or empty, as a `BusyPoll` ring does.
fn rtrb_stream<const N: usize>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
) {
    g.bench_function(BenchmarkId::new("rtrb_threads", label), |b| {
        b.iter_custom(|iters| {
            let (mut tx, mut rx) = rtrb::RingBuffer::<[u8; N]>::new(4096);
            let sink = std::thread::spawn(move || {
                let mut sum = 0u64;
                for _ in 0..iters {
                    let m = loop {
                        match rx.pop() {
                            Ok(m) => break m,
                            Err(_) => std::hint::spin_loop(),
                        }
                    };
                    sum = sum.wrapping_add(u64::from(std::hint::black_box(m)[0]));
                }
                sum
            });
            let msg = [0x5au8; N];
            let t0 = Instant::now();
            for _ in 0..iters {
                while tx.push(std::hint::black_box(msg)).is_err() {
                    std::hint::spin_loop();
                }
            }
            std::hint::black_box(sink.join().expect("sink"));
            t0.elapsed()
        })
    });
}

/// Slots of the probe ring (a power of two).
const PROBE_SLOTS: u64 = 4096;

/// How often the probe's consumer stores its position.
const PROBE_PUBLISH_EVERY: u64 = 64;

/// One slot of the probe ring: the sequence word (`i + 1` once message `i` is in) and
/// `W` payload words. Atomics throughout (relaxed for the payload: plain moves on
/// x86), so the probe needs no `unsafe`.
struct ProbeSlot<const W: usize> {
    seq: AtomicU64,
    data: [AtomicU64; W],
}

/// A probe ring of [`PROBE_SLOTS`] empty slots.
fn probe_slots<const W: usize>() -> Arc<Vec<ProbeSlot<W>>> {
    Arc::new(
        (0..PROBE_SLOTS)
            .map(|_| ProbeSlot {
                seq: AtomicU64::new(0),
                data: std::array::from_fn(|_| AtomicU64::new(0)),
            })
            .collect(),
    )
}

/// The slot message `i` goes in.
fn probe_slot<const W: usize>(slots: &[ProbeSlot<W>], i: u64) -> &ProbeSlot<W> {
    &slots[(i & (PROBE_SLOTS - 1)) as usize]
}

/// Wait (spinning) until message `i` is in `slot`.
fn probe_wait<const W: usize>(slot: &ProbeSlot<W>, i: u64) {
    while slot.seq.load(Ordering::Acquire) != i + 1 {
        std::hint::spin_loop();
    }
}

/// `floor/probe_roundtrip/8B`: message `i` out through one probe ring, echoed back
/// through another. One message is in flight, so neither ring can lap and no position
/// is ever published: each way moves the slot's line and nothing else.
fn probe_roundtrip(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.bench_function(BenchmarkId::new("probe_roundtrip", "8B"), |b| {
        b.iter_custom(|iters| {
            let (ping, pong) = (probe_slots::<1>(), probe_slots::<1>());
            let echo = {
                let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
                std::thread::spawn(move || {
                    for i in 0..iters {
                        let s = probe_slot(&ping, i);
                        probe_wait(s, i);
                        let r = probe_slot(&pong, i);
                        r.data[0].store(s.data[0].load(Ordering::Relaxed), Ordering::Relaxed);
                        r.seq.store(i + 1, Ordering::Release);
                    }
                })
            };
            let t0 = Instant::now();
            for i in 0..iters {
                let s = probe_slot(&ping, i);
                s.data[0].store(std::hint::black_box(i), Ordering::Relaxed);
                s.seq.store(i + 1, Ordering::Release);
                let r = probe_slot(&pong, i);
                probe_wait(r, i);
                std::hint::black_box(r.data[0].load(Ordering::Relaxed));
            }
            let elapsed = t0.elapsed();
            echo.join().expect("echo");
            elapsed
        })
    });
}

/// `iters` messages of `8 * W` bytes through the probe ring (see the module docs) to a
/// thread that reads each; both sides spin.
fn probe_stream<const W: usize>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
) {
    g.bench_function(BenchmarkId::new("probe_ring", label), |b| {
        b.iter_custom(|iters| {
            let slots = probe_slots::<W>();
            let head = Arc::new(AtomicU64::new(0));
            let sink = {
                let (slots, head) = (Arc::clone(&slots), Arc::clone(&head));
                std::thread::spawn(move || {
                    let mut sum = 0u64;
                    for i in 0..iters {
                        let s = probe_slot(&slots, i);
                        probe_wait(s, i);
                        for w in &s.data {
                            sum = sum.wrapping_add(w.load(Ordering::Relaxed));
                        }
                        if (i + 1) % PROBE_PUBLISH_EVERY == 0 {
                            head.store(i + 1, Ordering::Release);
                        }
                    }
                    sum
                })
            };
            let t0 = Instant::now();
            let mut head_cache = 0u64;
            for i in 0..iters {
                while i - head_cache >= PROBE_SLOTS {
                    head_cache = head.load(Ordering::Acquire);
                    std::hint::spin_loop();
                }
                let s = probe_slot(&slots, i);
                for w in &s.data {
                    w.store(std::hint::black_box(i), Ordering::Relaxed);
                }
                s.seq.store(i + 1, Ordering::Release);
            }
            std::hint::black_box(sink.join().expect("sink"));
            t0.elapsed()
        })
    });
}

criterion_group!(benches, floor);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
