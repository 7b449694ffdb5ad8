//! `throughput/*/{8B,64B,1KiB,64KiB}`: a producer in this process streams messages to a
//! consumer child; a sync message at the end of each sample waits until the child has
//! taken everything, so the time per message is end to end. Shaped like
//! `benches/ring.rs`'s `throughput` group.
//!
//! - `spsc_ring`: `shmkit_ring::spsc` copying `send` / `recv` (one copy in, one out).
//! - `spsc_ring_zero_copy`: `reserve` + write in place + `commit`; the child `read`s in
//!   place (first and last byte) and `release`s — the same work as `iceoryx2`.
//! - `queue_vec`: `shmkit_ring::Queue<Vec<u8>>` (serde path), next to `ipc_channel`'s
//!   `IpcSender<Vec<u8>>` (whose `send` takes the `Vec` by value: one clone per message).
//! - `iceoryx2`: loaned `[u8]` sample written in place, busy-polling subscriber.
//! - `local_socket` (`interprocess`) and `pipe` (`benches/support`): length-prefixed frames.
//!
//! `queue_u64/*/items`: `Queue<u64>` against `IpcSender<u64>`, items per second.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use shmkit_ring::Queue;

use crate::framed::{self, LocalSocket};
use crate::ipc;
use crate::support::shm::{self, RingStream};
use crate::support::{Baseline, Role, Transport};
use crate::{LONG, iox};

const SIZES: [usize; 4] = [8, 64, 1024, 64 * 1024];
/// Ring and queue capacity, as in `benches/ring.rs`.
const RING: usize = 8 << 20;

fn queue_sink(args: (Queue<Vec<u8>>, Queue<u8>)) {
    let (q, ack) = args;
    loop {
        match q.get_timeout(LONG) {
            Ok(v) if v.is_empty() => ack.put(&1).expect("ack"),
            Ok(v) if v.len() == 1 => return,
            Ok(v) => {
                black_box(&v);
            }
            Err(e) => panic!("queue sink: {e}"),
        }
    }
}

/// Time `iters` sends plus one sync.
fn stream(iters: u64, mut send: impl FnMut(), sync: impl FnOnce()) -> std::time::Duration {
    let t0 = Instant::now();
    for _ in 0..iters {
        send();
    }
    sync();
    t0.elapsed()
}

pub fn throughput(c: &mut Criterion) {
    shm::throughput_group(c, &SIZES, |g, size, label, msg| {
        // `Queue<Vec<u8>>` and `IpcSender<Vec<u8>>` take the message as a `Vec`.
        let msg = &msg.to_vec();
        // shmkit SPSC ring, copying (`benches/support/shm.rs`, as in `benches/ring.rs`).
        shm::bench_spsc_ring(g, label, msg, RING);

        // shmkit SPSC ring, zero-copy: reserve / write in place / commit.
        {
            let mut ring = RingStream::spawn(shm::ring_sink_in_place, RING);
            g.bench_function(BenchmarkId::new("spsc_ring_zero_copy", label), |b| {
                b.iter_custom(|iters| ring.timed(|tx| shm::send_in_place(tx, msg, iters)))
            });
        }

        // shmkit Queue<Vec<u8>>.
        {
            let q = Queue::<Vec<u8>>::anonymous(RING).expect("queue");
            let ack = Queue::<u8>::anonymous(4096).expect("ack queue");
            let mut child =
                shmkit_process::spawn(queue_sink, (q.clone(), ack.clone())).expect("spawn");
            g.bench_function(BenchmarkId::new("queue_vec", label), |b| {
                b.iter_custom(|iters| {
                    stream(
                        iters,
                        || q.put(msg).expect("put"),
                        || {
                            q.put(&Vec::new()).expect("sync");
                            ack.get_timeout(LONG).expect("ack");
                        },
                    )
                })
            });
            q.put(&vec![0]).expect("stop");
            child.join_timeout(LONG).expect("queue sink stops");
        }

        // iceoryx2 publish-subscribe, loaned samples, busy-polling subscriber. Buffer:
        // as many samples as fit 8 MiB (the ring's size), between 64 and 1024.
        {
            let buffer = (RING / size).clamp(64, 1024);
            let s = iox::Stream::spawn(size, buffer);
            g.bench_function(BenchmarkId::new("iceoryx2", label), |b| {
                b.iter_custom(|iters| stream(iters, || s.send(msg), || s.sync()))
            });
        }

        // ipc-channel IpcSender<Vec<u8>>.
        {
            let p = ipc::Peer::<Vec<u8>, u64>::sink();
            g.bench_function(BenchmarkId::new("ipc_channel", label), |b| {
                b.iter_custom(|iters| stream(iters, || p.send(msg.clone()), || p.sync()))
            });
        }

        // interprocess local socket and a pipe, length-prefixed frames.
        {
            let mut s = LocalSocket::spawn(framed::sink);
            g.bench_function(BenchmarkId::new("local_socket", label), |b| {
                b.iter_custom(|iters| s.stream_for(iters, msg))
            });
        }
        {
            let mut base = Baseline::spawn(Transport::Pipe, Role::Sink);
            g.bench_function(BenchmarkId::new("pipe", label), |b| {
                b.iter_custom(|iters| base.stream(iters, msg))
            });
        }
    });
}

pub fn queue_u64(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_u64");
    g.throughput(Throughput::Elements(1));

    // The same code as `benches/ring.rs`'s `queue_u64/shmkit/items`.
    shm::bench_queue_u64(&mut g);

    let p = ipc::Peer::<u64, u64>::sink();
    g.bench_function(BenchmarkId::new("ipc_channel", "items"), |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for i in 0..iters {
                p.send(i);
            }
            p.sync();
            t0.elapsed()
        })
    });
    drop(p);
    g.finish();
}
