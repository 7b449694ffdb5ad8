//! Ring benches: shmkit's SPSC ring, MPMC `Queue`, and `Pipe` against an OS pipe and a
//! Unix socket, all across two processes (children via shmkit-process; timing with
//! `iter_custom`, so start-up is outside the measured loop).
//!
//! - `throughput/{spsc_ring,mpmc,pipe,unix_socket}/{8B,64B,1KiB,64KiB,1MiB}`: stream
//!   messages to a child that receives (copies out) each; a sync message at the end of
//!   each sample waits until the child has read everything. `spsc_ring` sends one
//!   message per call; `spsc_ring_batch32` (8B..1KiB) sends the same stream through
//!   `send_batch`, 32 messages per publication. `spsc_zero_copy` writes each message in
//!   place (`reserve`/`commit`) to a child that reads in place, many per release
//!   (`read_batch`); `spsc_batch` (8B..1KiB) is `send_batch` into that same child.
//! - `roundtrip/{cacheline,ring_spin,ring_blocking,pipe,unix_socket}/8B`: ping-pong.
//!   `cacheline` is the floor: one shared word bounced between the two processes.
//!   `ring_spin` busy-polls (`try_` forms); `ring_blocking` sleeps on the futex at once
//!   (`SpinPolicy::NEVER`), so it measures the wake-up path.
//! - `queue_u64/shmkit/items`, `queue_u64/shmkit_growing/items`: `Queue<u64>` (serde
//!   path, fixed 1 MiB ring / default growing queue) items/s, to compare with
//!   Python's `multiprocessing.Queue` (`python3 benches/python/mp_queue.py`).
//!
//! Run: `cargo bench --bench ring -- --warm-up-time 1 --measurement-time 3`

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Connection, Error, Pipe, Queue};
use shmkit_segment::primitive::Ordering;
use shmkit_segment::{Segment, SegmentHandle};
use shmkit_sync::SpinPolicy;
use std::time::{Duration, Instant};
use support::{Baseline, Role, Transport, size_label};

const SIZES: [usize; 5] = [8, 64, 1024, 64 * 1024, 1 << 20];
const RING: usize = 8 << 20;
const LONG: Duration = Duration::from_secs(60);
/// Control messages are shorter than every payload: 0 bytes = sync, 1 byte = stop.
const SYNC: &[u8] = &[];
const STOP: &[u8] = &[0];

// --- throughput ---------------------------------------------------------------------

fn ring_sink(args: (Consumer, Producer)) {
    let (mut rx, mut ack) = args;
    let mut buf = Vec::with_capacity(1 << 20);
    loop {
        match rx.recv_timeout(&mut buf, LONG) {
            Ok(()) if buf.is_empty() => ack.send(b"k").expect("ack"),
            Ok(()) if buf.len() == 1 => return,
            Ok(()) => {}
            Err(Error::Disconnected) => return,
            Err(e) => panic!("ring sink: {e}"),
        }
    }
}

/// The zero-copy sink: reads messages in place, many per release (`read_batch`).
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

/// Bytes as postcard bytes (one length + one copy), not as a sequence of u8.
#[derive(Debug, Clone)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

fn queue_sink(args: (Queue<Blob>, Queue<u8>)) {
    let (q, ack) = args;
    loop {
        match q.get_timeout(LONG) {
            Ok(b) if b.0.is_empty() => ack.put(&1).expect("ack"),
            Ok(b) if b.0.len() == 1 => return,
            Ok(_) => {}
            Err(e) => panic!("queue sink: {e}"),
        }
    }
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("throughput");
    for size in SIZES {
        let msg = vec![0x5au8; size];
        let label = size_label(size);
        g.throughput(Throughput::Bytes(size as u64));

        let (mut tx, rx) = spsc::channel_anonymous(RING).expect("ring");
        let (ack_tx, mut ack_rx) = spsc::channel_anonymous(4096).expect("ack ring");
        let child = shmkit_process::spawn(ring_sink, (rx, ack_tx)).expect("spawn");
        let mut ack = Vec::new();
        g.bench_function(BenchmarkId::new("spsc_ring", &label), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    tx.send(&msg).expect("send");
                }
                tx.send(SYNC).expect("sync");
                ack_rx.recv_timeout(&mut ack, LONG).expect("ack");
                t0.elapsed()
            })
        });
        if size <= 1024 {
            // The same stream through the batch API: 32 messages per publication.
            let batch = vec![msg.clone(); 32];
            g.bench_function(BenchmarkId::new("spsc_ring_batch32", &label), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    let mut left = iters as usize;
                    while left > 0 {
                        let n = left.min(batch.len());
                        tx.send_batch(&batch[..n]).expect("send batch");
                        left -= n;
                    }
                    tx.send(SYNC).expect("sync");
                    ack_rx.recv_timeout(&mut ack, LONG).expect("ack");
                    t0.elapsed()
                })
            });
        }
        tx.send(STOP).expect("stop");
        let mut child = child;
        child.join_timeout(LONG).expect("ring sink stops");

        // Zero-copy both ways: the producer writes in place (`reserve`/`commit`), the
        // consumer reads in place, releasing many messages at once (`read_batch`).
        let (mut tx, rx) = spsc::channel_anonymous(RING).expect("ring");
        let (ack_tx, mut ack_rx) = spsc::channel_anonymous(4096).expect("ack ring");
        let child = shmkit_process::spawn(ring_sink_zero_copy, (rx, ack_tx)).expect("spawn");
        g.bench_function(BenchmarkId::new("spsc_zero_copy", &label), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    let mut grant = tx.reserve(size).expect("reserve");
                    grant.as_mut_slice().copy_from_slice(&msg);
                    grant.commit();
                }
                tx.send(SYNC).expect("sync");
                ack_rx.recv_timeout(&mut ack, LONG).expect("ack");
                t0.elapsed()
            })
        });
        if size <= 1024 {
            // Batches at both ends: `send_batch` (32 per publication) into a consumer
            // that reads in place and releases many per store (`read_batch`).
            let batch = vec![msg.clone(); 32];
            g.bench_function(BenchmarkId::new("spsc_batch", &label), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    let mut left = iters as usize;
                    while left > 0 {
                        let n = left.min(batch.len());
                        tx.send_batch(&batch[..n]).expect("send batch");
                        left -= n;
                    }
                    tx.send(SYNC).expect("sync");
                    ack_rx.recv_timeout(&mut ack, LONG).expect("ack");
                    t0.elapsed()
                })
            });
        }
        tx.send(STOP).expect("stop");
        let mut child = child;
        child.join_timeout(LONG).expect("zero-copy ring sink stops");

        let q = Queue::<Blob>::anonymous(RING).expect("queue");
        let ack_q = Queue::<u8>::anonymous(4096).expect("ack queue");
        let child = shmkit_process::spawn(queue_sink, (q.clone(), ack_q.clone())).expect("spawn");
        let blob = Blob(msg.clone());
        g.bench_function(BenchmarkId::new("mpmc", &label), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    q.put(&blob).expect("put");
                }
                q.put(&Blob(Vec::new())).expect("sync");
                ack_q.get_timeout(LONG).expect("ack");
                t0.elapsed()
            })
        });
        q.put(&Blob(vec![0])).expect("stop");
        let mut child = child;
        child.join_timeout(LONG).expect("queue sink stops");

        for (id, transport) in [
            ("pipe", Transport::Pipe),
            ("unix_socket", Transport::UnixSocket),
        ] {
            let mut base = Baseline::spawn(transport, Role::Sink);
            g.bench_function(BenchmarkId::new(id, &label), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        base.send(&msg);
                    }
                    base.sync();
                    t0.elapsed()
                })
            });
        }
    }
    g.finish();
}

// --- round trip ----------------------------------------------------------------------

fn cacheline_child(h: SegmentHandle) {
    let seg = h.open().expect("open");
    let word = seg.atomic_u64(0).expect("word");
    let mut seen = 0;
    loop {
        let v = word.load(Ordering::Acquire);
        if v == u64::MAX {
            return;
        }
        if v != seen && v % 2 == 1 {
            word.store(v + 1, Ordering::Release);
            seen = v + 1;
        }
        std::hint::spin_loop();
    }
}

fn echo_spin(conn: Connection) {
    let mut buf = Vec::new();
    loop {
        match conn.try_recv_bytes(&mut buf) {
            Ok(()) if buf.len() == 1 => return,
            Ok(()) => while conn.try_send_bytes(&buf).is_err() {},
            Err(Error::Empty) => std::hint::spin_loop(),
            Err(e) => panic!("echo: {e}"),
        }
    }
}

fn echo_blocking(conn: Connection) {
    conn.set_spin_policy(SpinPolicy::NEVER);
    let mut buf = Vec::new();
    loop {
        match conn.recv_bytes_into(&mut buf) {
            Ok(()) if buf.len() == 1 => return,
            Ok(()) => conn.send_bytes(&buf).expect("echo"),
            Err(e) => panic!("echo: {e}"),
        }
    }
}

fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip");
    let msg = [7u8; 8];

    let seg = Segment::anonymous(128).expect("segment");
    let child = shmkit_process::spawn(cacheline_child, seg.handle()).expect("spawn");
    let word = seg.atomic_u64(0).expect("word");
    let mut next = 1u64;
    g.bench_function(BenchmarkId::new("cacheline", "8B"), |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                word.store(next, Ordering::Release);
                while word.load(Ordering::Acquire) != next + 1 {
                    std::hint::spin_loop();
                }
                next += 2;
            }
            t0.elapsed()
        })
    });
    word.store(u64::MAX, Ordering::Release);
    let mut child = child;
    child.join_timeout(LONG).expect("cacheline child stops");

    let (a, b) = Pipe::with_capacity(1 << 16, true).expect("pipe");
    let child = shmkit_process::spawn(echo_spin, b).expect("spawn");
    let mut buf = Vec::new();
    g.bench_function(BenchmarkId::new("ring_spin", "8B"), |bch| {
        bch.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                a.try_send_bytes(&msg).expect("send");
                while a.try_recv_bytes(&mut buf).is_err() {
                    std::hint::spin_loop();
                }
            }
            t0.elapsed()
        })
    });
    a.send_bytes(STOP).expect("stop");
    let mut child = child;
    child.join_timeout(LONG).expect("spin echo stops");

    let (a, b) = Pipe::with_capacity(1 << 16, true).expect("pipe");
    a.set_spin_policy(SpinPolicy::NEVER);
    let child = shmkit_process::spawn(echo_blocking, b).expect("spawn");
    g.bench_function(BenchmarkId::new("ring_blocking", "8B"), |bch| {
        bch.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                a.send_bytes(&msg).expect("send");
                a.recv_bytes_into(&mut buf).expect("recv");
            }
            t0.elapsed()
        })
    });
    a.send_bytes(STOP).expect("stop");
    let mut child = child;
    child.join_timeout(LONG).expect("blocking echo stops");

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

fn u64_sink(args: (Queue<u64>, Queue<u8>)) {
    let (q, ack) = args;
    loop {
        match q.get_timeout(LONG) {
            Ok(u64::MAX) => ack.put(&1).expect("ack"),
            Ok(v) if v == u64::MAX - 1 => return,
            Ok(_) => {}
            Err(e) => panic!("u64 sink: {e}"),
        }
    }
}

fn queue_u64(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_u64");
    g.throughput(Throughput::Elements(1));
    // A fixed 1 MiB ring (put waits while it is full), and the default growing queue
    // (put never waits; pages reserved ahead of the producer, given back behind the
    // consumer): the cost of growth, measured in the same run.
    let shapes = [
        ("shmkit", Queue::<u64>::anonymous(1 << 20).expect("queue")),
        ("shmkit_growing", Queue::<u64>::new().expect("queue")),
    ];
    for (id, q) in shapes {
        let ack = Queue::<u8>::anonymous(4096).expect("ack");
        let child = shmkit_process::spawn(u64_sink, (q.clone(), ack.clone())).expect("spawn");
        g.bench_function(BenchmarkId::new(id, "items"), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for i in 0..iters {
                    q.put(&i).expect("put");
                }
                q.put(&u64::MAX).expect("sync");
                ack.get_timeout(LONG).expect("ack");
                t0.elapsed()
            })
        });
        q.put(&(u64::MAX - 1)).expect("stop");
        let mut child = child;
        child.join_timeout(LONG).expect("u64 sink stops");
    }
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
