//! `roundtrip/*/8B`: 8 bytes to a child and back, shaped like `benches/ring.rs`'s
//! `roundtrip` group.
//!
//! - `cacheline`: the floor — one shared `AtomicU64` bounced between the processes.
//! - `ring_spin` / `ring_blocking`: a shmkit `Pipe` (two SPSC rings), busy-polling with
//!   the `try_` forms, or sleeping on the futex at once (`SpinPolicy::NEVER`).
//! - `iceoryx2_pubsub`: two one-slot publish-subscribe services, both sides busy-poll.
//! - `iceoryx2_event`: notify, `blocking_wait` for the answer (no payload).
//! - `ipc_channel`: a `u64` through `IpcSender`/`IpcReceiver` and back.
//! - `local_socket` (`interprocess`) and `pipe`: a length-prefixed frame echoed back.

use std::time::Instant;

use criterion::{BenchmarkId, Criterion};
use shmkit_ring::{Connection, Error, Pipe};
use shmkit_segment::primitive::Ordering;
use shmkit_segment::{Segment, SegmentHandle};
use shmkit_sync::SpinPolicy;

use crate::framed::{self, LocalSocket};
use crate::support::{Baseline, Role, Transport};
use crate::{LONG, iox, ipc, spin_until};

const STOP: &[u8] = &[0];

fn cacheline_child(h: SegmentHandle) {
    let seg = h.open().expect("open");
    let word = seg.atomic_u64(0).expect("word");
    let mut seen = 0;
    loop {
        let v = spin_until(|| {
            let v = word.load(Ordering::Acquire);
            (v != seen).then_some(v)
        });
        if v == u64::MAX {
            return;
        }
        if v % 2 == 1 {
            word.store(v + 1, Ordering::Release);
            seen = v + 1;
        }
    }
}

fn echo_spin(conn: Connection) {
    let mut buf = Vec::new();
    loop {
        spin_until(|| match conn.try_recv_bytes(&mut buf) {
            Ok(()) => Some(()),
            Err(Error::Empty) => None,
            Err(e) => panic!("echo: {e}"),
        });
        if buf.len() == 1 {
            return;
        }
        spin_until(|| conn.try_send_bytes(&buf).ok());
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

pub fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip");
    let msg = [7u8; 8];
    let mut buf = Vec::new();

    // The floor: one cache line between two processes.
    {
        let seg = Segment::anonymous(128).expect("segment");
        let mut child = shmkit_process::spawn(cacheline_child, seg.handle()).expect("spawn");
        let word = seg.atomic_u64(0).expect("word");
        let mut next = 1u64;
        g.bench_function(BenchmarkId::new("cacheline", "8B"), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    word.store(next, Ordering::Release);
                    spin_until(|| (word.load(Ordering::Acquire) == next + 1).then_some(()));
                    next += 2;
                }
                t0.elapsed()
            })
        });
        word.store(u64::MAX, Ordering::Release);
        child.join_timeout(LONG).expect("cacheline child stops");
    }

    // shmkit ring, both sides spinning.
    {
        let (a, b) = Pipe::with_capacity(1 << 16, true).expect("pipe");
        let mut child = shmkit_process::spawn(echo_spin, b.transfer()).expect("spawn");
        g.bench_function(BenchmarkId::new("ring_spin", "8B"), |bch| {
            bch.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    a.try_send_bytes(&msg).expect("send");
                    spin_until(|| a.try_recv_bytes(&mut buf).ok());
                }
                t0.elapsed()
            })
        });
        a.send_bytes(STOP).expect("stop");
        child.join_timeout(LONG).expect("spin echo stops");
    }

    // shmkit ring, both sides sleeping on the futex at once.
    {
        let (a, b) = Pipe::with_capacity(1 << 16, true).expect("pipe");
        a.set_spin_policy(SpinPolicy::NEVER);
        let mut child = shmkit_process::spawn(echo_blocking, b.transfer()).expect("spawn");
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
        child.join_timeout(LONG).expect("blocking echo stops");
    }

    // iceoryx2 publish-subscribe, busy-waiting (its own round-trip benchmark's setup).
    {
        let pp = iox::PubSubPingPong::spawn();
        g.bench_function(BenchmarkId::new("iceoryx2_pubsub", "8B"), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                for _ in 0..iters {
                    pp.round_trip(&msg);
                }
                t0.elapsed()
            })
        });
    }

    // iceoryx2 event service, blocking.
    {
        let mut pp = iox::EventPingPong::spawn();
        g.bench_function(BenchmarkId::new("iceoryx2_event", "8B"), |b| {
            b.iter(|| pp.round_trip())
        });
    }

    // ipc-channel, a u64 there and back.
    {
        let p = ipc::Peer::<u64, u64>::echo();
        let v = u64::from_le_bytes(msg);
        g.bench_function(BenchmarkId::new("ipc_channel", "8B"), |b| {
            b.iter(|| p.round_trip(v))
        });
    }

    // interprocess local socket and a pipe.
    {
        let mut s = LocalSocket::spawn(framed::echo);
        g.bench_function(BenchmarkId::new("local_socket", "8B"), |b| {
            b.iter(|| s.round_trip(&msg, &mut buf))
        });
    }
    {
        let mut base = Baseline::spawn(Transport::Pipe, Role::Echo);
        g.bench_function(BenchmarkId::new("pipe", "8B"), |b| {
            b.iter(|| base.round_trip(&msg, &mut buf))
        });
    }
    g.finish();
}
