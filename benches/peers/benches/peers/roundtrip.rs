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

use crate::framed::{self, LocalSocket};
use crate::support::shm::{Cacheline, RingEcho};
use crate::support::{Baseline, Role, Transport};
use crate::{iox, ipc};

pub fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("roundtrip");
    let msg = [7u8; 8];
    let mut buf = Vec::new();

    // The floor: one cache line between two processes; then a shmkit `Pipe`, both sides
    // spinning, or both sleeping on the futex at once (`benches/support/shm.rs`, the
    // same code as `benches/ring.rs`).
    {
        let mut cacheline = Cacheline::spawn();
        g.bench_function(BenchmarkId::new("cacheline", "8B"), |b| {
            b.iter_custom(|iters| cacheline.timed(iters))
        });
    }
    for (id, spin) in [("ring_spin", true), ("ring_blocking", false)] {
        let mut echo = RingEcho::spawn(spin);
        g.bench_function(BenchmarkId::new(id, "8B"), |b| {
            b.iter_custom(|iters| echo.timed(iters, &msg))
        });
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
