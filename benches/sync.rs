//! Sync benches: shmkit's robust `Mutex` and `Event` against the requested `raw_sync`,
//! `std::sync::Mutex` (in-process floor) and a token passed through a pipe.
//!
//! - `lock_uncontended/{shmkit,raw_sync,std}/lock_unlock`: one lock + unlock, no contention.
//! - `lock_handoff/{shmkit,pipe}/round_trip`: the turn passes to a second process and back
//!   (through the mutex, or as a byte through a pipe and back).
//! - `event_pingpong/{shmkit,pipe}/round_trip`: a blocking wake-up there and back.
//!
//! Run: `cargo bench --bench sync`

mod support;

use std::hint::black_box;
use std::time::Duration;

use bytemuck::{Pod, Zeroable};
use criterion::{BenchmarkId, Criterion, criterion_group};
use raw_sync::locks::LockInit;
use shmkit_process::spawn;
use shmkit_sync::{Handle, Mutex, SpinPolicy};
use support::shm::EventPingPong;
use support::{Baseline, Role, Transport};

fn lock_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_uncontended");
    let m = Mutex::anonymous(0u64).expect("shmkit mutex");
    g.bench_function(BenchmarkId::new("shmkit", "lock_unlock"), |b| {
        b.iter(|| {
            *m.lock().expect("lock") += 1;
        })
    });
    let mut mem = vec![0u64; 512];
    let base = mem.as_mut_ptr().cast::<u8>();
    // SAFETY: a 4 KiB heap buffer that outlives the raw_sync mutex placed in it.
    let (rs, _) = unsafe { raw_sync::locks::Mutex::new(base, base.add(256)) }.expect("raw_sync");
    g.bench_function(BenchmarkId::new("raw_sync", "lock_unlock"), |b| {
        b.iter(|| {
            let guard = rs.lock().expect("raw_sync lock");
            black_box(&guard);
        })
    });
    let std_m = std::sync::Mutex::new(0u64);
    g.bench_function(BenchmarkId::new("std", "lock_unlock"), |b| {
        b.iter(|| {
            *std_m.lock().expect("std lock") += 1;
        })
    });
    drop(rs);
    drop(mem);
    g.finish();
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Turn {
    /// 1: the child's turn; 0: the parent's.
    child: u32,
    stop: u32,
}

/// Child side of the handoff: whenever it is our turn, hand it back.
fn handoff_child(m: Handle<Mutex<Turn>>) {
    let m = m.open().expect("open");
    loop {
        let mut g = m.lock().expect("lock");
        if g.stop != 0 {
            return;
        }
        if g.child == 1 {
            g.child = 0;
        }
    }
}

fn lock_handoff(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_handoff");
    let m = Mutex::anonymous(Turn::zeroed()).expect("mutex");
    let child = spawn(handoff_child, m.handle()).expect("spawn");
    g.bench_function(BenchmarkId::new("shmkit", "round_trip"), |b| {
        b.iter(|| {
            m.lock().expect("lock").child = 1;
            while m.lock().expect("lock").child == 1 {}
        })
    });
    m.lock().expect("lock").stop = 1;
    let mut child = child;
    child
        .join_timeout(Duration::from_secs(10))
        .expect("child stops");

    let mut pipe = Baseline::spawn(Transport::Pipe, Role::Echo);
    let mut buf = Vec::new();
    g.bench_function(BenchmarkId::new("pipe", "round_trip"), |b| {
        b.iter(|| pipe.round_trip(&[1], &mut buf))
    });
    g.finish();
}

/// The blocking round trip for several spin budgets (both sides spin the same): this is
/// the measurement behind `SpinPolicy::DEFAULT` (docs/sync.md). `spin0` is a pure futex
/// sleep/wake each way.
fn event_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("event_pingpong");
    for spins in [0u32, 10, 100, 2000] {
        let pingpong = EventPingPong::spawn(spins);
        let id = if spins == SpinPolicy::DEFAULT.spins {
            "shmkit".to_string()
        } else {
            format!("shmkit_spin{spins}")
        };
        g.bench_function(BenchmarkId::new(id, "round_trip"), |b| {
            b.iter_custom(|iters| pingpong.timed(iters))
        });
    }

    let mut pipe = Baseline::spawn(Transport::Pipe, Role::Echo);
    let mut buf = Vec::new();
    g.bench_function(BenchmarkId::new("pipe", "round_trip"), |b| {
        b.iter(|| pipe.round_trip(&[1], &mut buf))
    });
    g.finish();
}

criterion_group!(benches, lock_uncontended, lock_handoff, event_pingpong);

fn main() {
    shmkit_process::init();
    support::dispatch_child_role();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
