//! `wakeup/*/round_trip`: set an event another process waits on, then wait until it
//! sets one back — two blocking wake-ups per iteration, shaped like `benches/sync.rs`'s
//! `event_pingpong`.
//!
//! - `shmkit_event`: `shmkit_sync::Event` with its default spin policy (spin, yield,
//!   then sleep on the futex); `shmkit_event_spin0` sleeps at once (futex only).
//! - `iceoryx2_event`: the event service (notify / `blocking_wait`).
//! - `raw_sync_event`: `raw_sync::events::Event` (auto-reset; a process-shared pthread
//!   mutex + condition variable) in a `shared_memory` segment, as raw_sync's README
//!   sets them up.
//! - `pipe`: one byte through a pipe and back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use raw_sync::Timeout;
use raw_sync::events::{Event as RawEvent, EventImpl, EventInit, EventState};
use shared_memory::{Shmem, ShmemConf};
use shmkit_sync::SpinPolicy;

use crate::support::shm::EventPingPong;
use crate::support::{Baseline, Role, Transport};
use crate::{LONG, iox};

/// shmkit's `Event`, with the default spin policy and with none (`benches/sync.rs`'s
/// `event_pingpong`, the same code: `benches/support/shm.rs`).
fn shmkit_event(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    for (id, spins) in [
        ("shmkit_event", SpinPolicy::DEFAULT.spins),
        ("shmkit_event_spin0", 0),
    ] {
        let pingpong = EventPingPong::spawn(spins);
        g.bench_function(BenchmarkId::new(id, "round_trip"), |b| {
            b.iter_custom(|iters| pingpong.timed(iters))
        });
    }
}

// raw_sync: two events and a stop word in one shared_memory segment.
const PING_AT: usize = 0;
const PONG_AT: usize = 1024;
const STOP_AT: usize = 2048;
const RAW_SEGMENT: usize = 4096;

fn stop_word(shm: &Shmem) -> &AtomicU32 {
    // SAFETY: the segment is RAW_SEGMENT bytes, page-aligned, mapped for as long as
    // `shm` lives; STOP_AT + 4 <= RAW_SEGMENT and STOP_AT is 4-aligned; the word is only
    // ever accessed atomically, by both processes.
    unsafe { &*shm.as_ptr().add(STOP_AT).cast::<AtomicU32>() }
}

fn raw_events(shm: &Shmem, create: bool) -> (Box<dyn EventImpl>, Box<dyn EventImpl>) {
    let base = shm.as_ptr();
    assert!(shm.len() >= RAW_SEGMENT);
    let at = |off: usize| {
        // SAFETY: `off` < RAW_SEGMENT <= the mapping's length (asserted above); each
        // event's region (< 1 KiB for a pthread mutex + condvar + state) ends before the
        // next offset; the creator initialises before the child is started, the child
        // only opens.
        unsafe {
            let p = base.add(off);
            if create {
                RawEvent::new(p, true)
            } else {
                RawEvent::from_existing(p)
            }
        }
        .expect("raw_sync event")
        .0
    };
    (at(PING_AT), at(PONG_AT))
}

fn raw_sync_pong(os_id: String) {
    let shm = ShmemConf::new().os_id(&os_id).open().expect("open segment");
    let (ping, pong) = raw_events(&shm, false);
    let stop = stop_word(&shm);
    let deadline = Instant::now() + LONG;
    loop {
        if ping.wait(Timeout::Val(Duration::from_secs(1))).is_err() {
            if stop.load(Ordering::Acquire) != 0 || Instant::now() > deadline {
                return;
            }
            continue;
        }
        if stop.load(Ordering::Acquire) != 0 {
            return;
        }
        pong.set(EventState::Signaled).expect("set pong");
    }
}

fn raw_sync_event(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let os_id = crate::unique_name("rawev");
    // The creator owns the segment: dropping `shm` unmaps and unlinks it.
    let shm = ShmemConf::new()
        .size(RAW_SEGMENT)
        .os_id(&os_id)
        .create()
        .expect("create segment");
    let (ping, pong) = raw_events(&shm, true);
    let mut child = shmkit_process::spawn(raw_sync_pong, os_id).expect("spawn");
    g.bench_function(BenchmarkId::new("raw_sync_event", "round_trip"), |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                ping.set(EventState::Signaled).expect("set ping");
                pong.wait(Timeout::Val(LONG)).expect("pong");
            }
            t0.elapsed()
        })
    });
    stop_word(&shm).store(1, Ordering::Release);
    ping.set(EventState::Signaled).expect("set ping");
    child.join_timeout(LONG).expect("raw_sync pong stops");
    drop((ping, pong));
    drop(shm);
}

pub fn wakeup(c: &mut Criterion) {
    let mut g = c.benchmark_group("wakeup");
    shmkit_event(&mut g);
    {
        let mut pp = iox::EventPingPong::spawn();
        g.bench_function(BenchmarkId::new("iceoryx2_event", "round_trip"), |b| {
            b.iter(|| pp.round_trip())
        });
    }
    raw_sync_event(&mut g);
    {
        let mut pipe = Baseline::spawn(Transport::Pipe, Role::Echo);
        let mut buf = Vec::new();
        g.bench_function(BenchmarkId::new("pipe", "round_trip"), |b| {
            b.iter(|| pipe.round_trip(&[1], &mut buf))
        });
    }
    g.finish();
}
