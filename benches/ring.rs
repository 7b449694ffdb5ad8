//! Ring benches: shmkit's SPSC ring, MPMC `Queue`, and `Pipe` against an OS pipe and a
//! Unix socket, all across two processes (children via shmkit-process; timing with
//! `iter_custom`, so start-up is outside the measured loop).
//!
//! - `throughput/{spsc_ring,queue_vec,pipe,unix_socket}/{8B,64B,1KiB,64KiB,1MiB}`: stream
//!   messages to a child that receives (copies out) each; a sync message at the end of
//!   each sample waits until the child has read everything. `spsc_ring` sends one
//!   message per call (on a `Blocking` ring; `spsc_busy_poll` and `spsc_backoff`,
//!   8B..1KiB, the same on rings built with those wait strategies); `spsc_ring_batch32` (8B..1KiB) sends the same stream through
//!   `send_batch`, 32 messages per publication. `spsc_zero_copy` writes each message in
//!   place (`reserve`/`commit`) to a child that reads each in place (`read`/`release`,
//!   the zero-copy pair of `send`/`recv`); `spsc_batch` (8B..1KiB) is `send_batch` into
//!   a child that reads in place, many per release (`read_batch`).
//! - `roundtrip/{cacheline,ring_spin,ring_blocking,ring_busy_poll,spsc_busy_poll,queue_u64,pipe,unix_socket}/8B`:
//!   ping-pong.
//!   `cacheline` is the floor: one shared word bounced between the two processes.
//!   `ring_spin` busy-polls (`try_` forms); `ring_blocking` sleeps on the futex at once
//!   (`SpinPolicy::NEVER`), so it measures the wake-up path; `ring_busy_poll` is the
//!   blocking API on a `BusyPoll` pipe (both sides spin inside `recv`); `spsc_busy_poll`
//!   the same over two `BusyPoll` SPSC rings (a `Pipe` end takes a lock per call);
//!   `queue_u64` a `u64` request and its reply over two `Queue<u64>`s (default waits).
//! - `queue_u64/shmkit/items`, `queue_u64/shmkit_growing/items`: `Queue<u64>` (serde
//!   path, fixed 1 MiB ring / default growing queue) items/s, to compare with
//!   Python's `multiprocessing.Queue` (`python3 benches/python/mp_queue.py`);
//!   `queue_u64/shmkit_4x4/items`: four producer and four consumer processes on one
//!   queue (`mp_queue.py --producers 4 --consumers 4`).
//!
//! Run: `cargo bench --bench ring -- --warm-up-time 1 --measurement-time 3`

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use shmkit_ring::spsc::{Consumer, Producer};
use shmkit_ring::{Error, Queue, WaitStrategy};
use std::time::Instant;
use support::shm::{self, Cacheline, LONG, RingEcho, RingStream};
use support::{Baseline, Role, Transport};

const SIZES: [usize; 5] = [8, 64, 1024, 64 * 1024, 1 << 20];
const RING: usize = 8 << 20;

// --- throughput ---------------------------------------------------------------------

/// The batch sink: reads messages in place, many per release (`read_batch`).
fn ring_sink_zero_copy(args: (Consumer, Producer)) {
    let (mut rx, mut ack) = args;
    let (mut syncs, mut stop) = (0, false);
    while !stop {
        let got = rx.read_batch_timeout(256, LONG, |m| {
            // Touch the message where it lies, as a reader in place would.
            std::hint::black_box(m.first());
            match m.len() {
                0 => syncs += 1,
                1 => stop = true,
                _ => {}
            }
        });
        match got {
            Ok(_) => {}
            Err(Error::Disconnected) => return,
            Err(e) => panic!("zero-copy ring sink: {e}"),
        }
        for _ in 0..std::mem::take(&mut syncs) {
            ack.send(b"k").expect("ack");
        }
    }
}

fn queue_sink(args: (Queue<Vec<u8>>, Queue<u8>)) {
    let (q, ack) = args;
    loop {
        match q.get_timeout(LONG) {
            Ok(b) if b.is_empty() => ack.put(&1).expect("ack"),
            Ok(b) if b.len() == 1 => return,
            Ok(_) => {}
            Err(e) => panic!("queue sink: {e}"),
        }
    }
}

fn throughput(c: &mut Criterion) {
    shm::throughput_group(c, &SIZES, |g, size, label, msg| {
        shm::bench_spsc_ring(g, label, msg, RING);
        if size <= 1024 {
            // The same one-message-per-call stream on rings built with the other wait
            // strategies: no fence and no sleeper check per message.
            for (id, strategy) in [
                ("spsc_busy_poll", WaitStrategy::BusyPoll),
                ("spsc_backoff", WaitStrategy::Backoff),
            ] {
                shm::bench_spsc_ring_with(g, id, strategy, label, msg, RING);
            }
        }
        if size <= 1024 {
            // The same stream through the batch API: 32 messages per publication.
            let mut ring = RingStream::spawn(shm::ring_sink, RING);
            g.bench_function(BenchmarkId::new("spsc_ring_batch32", label), |b| {
                b.iter_custom(|iters| ring.timed(|tx| send_batches(tx, msg, iters)))
            });
        }

        // Zero-copy both ways: the producer writes in place (`reserve`/`commit`), the
        // consumer reads in place (`read`/`release`), one message per call as with
        // `send`/`recv`. (A consumer releasing 256 at a time was measured slower here:
        // it keeps up with the producer and reads each line as it is written.)
        let mut ring = RingStream::spawn(shm::ring_sink_in_place, RING);
        g.bench_function(BenchmarkId::new("spsc_zero_copy", label), |b| {
            b.iter_custom(|iters| ring.timed(|tx| shm::send_in_place(tx, msg, iters)))
        });
        drop(ring);
        if size <= 1024 {
            // Batches at both ends: `send_batch` (32 per publication) into a consumer
            // that reads in place and releases many per store (`read_batch`).
            let mut ring = RingStream::spawn(ring_sink_zero_copy, RING);
            g.bench_function(BenchmarkId::new("spsc_batch", label), |b| {
                b.iter_custom(|iters| ring.timed(|tx| send_batches(tx, msg, iters)))
            });
        }

        // `Queue<Vec<u8>>`, as a program moving buffers writes it: a plain `Vec<u8>`
        // item (no serde_bytes wrapper), taken out as a new `Vec` per item.
        let q = Queue::<Vec<u8>>::anonymous(RING).expect("queue");
        let ack_q = Queue::<u8>::anonymous(4096).expect("ack queue");
        let child = shmkit_process::spawn(queue_sink, (q.clone(), ack_q.clone())).expect("spawn");
        let item = msg.to_vec();
        g.bench_function(BenchmarkId::new("queue_vec", label), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    q.put(&item).expect("put");
                }
                q.put(&Vec::new()).expect("sync");
                ack_q.get_timeout(LONG).expect("ack");
                t0.elapsed()
            })
        });
        q.put(&vec![0]).expect("stop");
        let mut child = child;
        child.join_timeout(LONG).expect("queue sink stops");

        for (id, transport) in [
            ("pipe", Transport::Pipe),
            ("unix_socket", Transport::UnixSocket),
        ] {
            let mut base = Baseline::spawn(transport, Role::Sink);
            g.bench_function(BenchmarkId::new(id, label), |b| {
                b.iter_custom(|iters| base.stream(iters, msg))
            });
        }
    });
}

/// `iters` messages through `send_batch`, 32 per publication.
fn send_batches(tx: &mut Producer, msg: &[u8], iters: u64) {
    let batch = vec![msg; 32];
    let mut left = iters as usize;
    while left > 0 {
        let n = left.min(batch.len());
        tx.send_batch(&batch[..n]).expect("send batch");
        left -= n;
    }
}

// --- round trip ----------------------------------------------------------------------

fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip");
    let msg = [7u8; 8];

    let mut cacheline = Cacheline::spawn();
    g.bench_function(BenchmarkId::new("cacheline", "8B"), |b| {
        b.iter_custom(|iters| cacheline.timed(iters))
    });
    drop(cacheline);

    for (id, spin, strategy) in [
        ("ring_spin", true, WaitStrategy::Blocking),
        ("ring_blocking", false, WaitStrategy::Blocking),
        ("ring_busy_poll", false, WaitStrategy::BusyPoll),
    ] {
        let mut echo = RingEcho::spawn_with(spin, strategy);
        g.bench_function(BenchmarkId::new(id, "8B"), |b| {
            b.iter_custom(|iters| echo.timed(iters, &msg))
        });
    }

    // The same round trip over two SPSC rings: no `Pipe`, so no lock per call.
    let mut echo = shm::SpscEcho::spawn(WaitStrategy::BusyPoll);
    g.bench_function(BenchmarkId::new("spsc_busy_poll", "8B"), |b| {
        b.iter_custom(|iters| echo.timed(iters, &msg))
    });
    drop(echo);

    // A request and its reply over two `Queue<u64>`s (the consumer's catch-up pause
    // must not cost it: docs/ring.md, "Catching up").
    let echo = shm::QueueEcho::spawn();
    g.bench_function(BenchmarkId::new("queue_u64", "8B"), |b| {
        b.iter_custom(|iters| echo.timed(iters))
    });
    drop(echo);

    let mut buf = Vec::new();
    for (id, transport) in [
        ("pipe", Transport::Pipe),
        ("unix_socket", Transport::UnixSocket),
    ] {
        let mut base = Baseline::spawn(transport, Role::Echo);
        g.bench_function(BenchmarkId::new(id, "8B"), |bch| {
            bch.iter(|| base.round_trip(&msg, &mut buf))
        });
    }
    g.finish();
}

// --- Queue<u64> vs Python ------------------------------------------------------------

fn queue_u64(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_u64");
    g.throughput(Throughput::Elements(1));
    shm::bench_queue_u64(&mut g);
    // The default growing queue (put never waits; pages reserved ahead of the producer,
    // given back behind the consumer): the cost of growth, measured in the same run.
    let growing = shm::U64Stream::over(Queue::<u64>::new().expect("queue"));
    shm::bench_queue_u64_over(&mut g, "shmkit_growing", growing);
    // Four producers and four consumers on one fixed 1 MiB ring (eight processes on
    // this machine's cores): to compare with `mp_queue.py --producers 4 --consumers 4`.
    let many = shm::U64Many::spawn(4, 4);
    g.bench_function(BenchmarkId::new("shmkit_4x4", "items"), |b| {
        b.iter_custom(|iters| many.timed(iters))
    });
    g.finish();
}

criterion_group!(benches, throughput, roundtrip, queue_u64);

fn main() {
    shmkit_process::init();
    support::dispatch_child_role();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
