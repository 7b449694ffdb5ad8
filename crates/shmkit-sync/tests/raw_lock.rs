//! The robust lock's core (`lock::acquire` / `release`, the code every Mutex, RLock,
//! Value, Array and Dict runs) over a heap word, with real threads and the real futex:
//! the in-process half of what loom_mutex.rs models. Written to run under Miri
//! (`ci/miri.sh`), which checks the data accesses under the lock for races and UB;
//! the liveness half (OFD locks, generations in a segment) needs real processes.
#![cfg(not(shmkit_loom))]

use std::cell::UnsafeCell;
use std::time::Duration;

use shmkit_sync::futex::{Deadline, SpinPolicy};
use shmkit_sync::primitive::{AtomicU32, Ordering};
use shmkit_sync::raw::{Acquired, WAITERS, acquire, release, try_acquire};

/// Data guarded by the lock word, as a segment's payload is.
struct Guarded {
    word: AtomicU32,
    data: UnsafeCell<u64>,
}

// SAFETY: `data` is only touched while `word` is held (the property under test).
unsafe impl Sync for Guarded {}

fn lockers(spin: SpinPolicy, threads: u32, rounds: u64) {
    let g = Guarded {
        word: AtomicU32::new(0),
        data: UnsafeCell::new(0),
    };
    std::thread::scope(|s| {
        for token in 1..=threads {
            let g = &g;
            s.spawn(move || {
                for _ in 0..rounds {
                    let got = acquire(&g.word, token, spin, Deadline::NEVER, |_| false);
                    assert_eq!(got, Some(Acquired::Clean));
                    // SAFETY: the lock is held; a second writer would be a data race,
                    // which Miri reports.
                    unsafe { *g.data.get() += 1 };
                    release(&g.word);
                }
            });
        }
    });
    assert_eq!(g.data.into_inner(), u64::from(threads) * rounds);
    assert_eq!(g.word.load(Ordering::SeqCst), 0);
}

#[test]
fn spinning_lockers_exclude_each_other() {
    let rounds = if cfg!(miri) { 30 } else { 20_000 };
    lockers(SpinPolicy::DEFAULT, 3, rounds);
}

#[test]
fn sleeping_lockers_exclude_each_other_and_are_woken() {
    // No spinning: every contended acquire sets WAITERS and sleeps on the futex, so the
    // wake in `release` is what lets the others go on.
    let rounds = if cfg!(miri) { 20 } else { 5_000 };
    lockers(SpinPolicy::NEVER, 3, rounds);
}

#[test]
fn a_dead_owners_lock_is_taken_over_with_owner_died() {
    let g = Guarded {
        word: AtomicU32::new(0),
        data: UnsafeCell::new(0),
    };
    let shared = &g;
    std::thread::scope(|s| {
        s.spawn(move || {
            let g = shared;
            assert!(try_acquire(&g.word, 1));
            // SAFETY: the lock is held.
            unsafe { *g.data.get() = 42 };
            // "Dies": never releases.
        });
    });
    let got = acquire(&g.word, 2, SpinPolicy::NEVER, Deadline::NEVER, |o| o == 1);
    assert_eq!(got, Some(Acquired::OwnerDied));
    // SAFETY: the lock is held; the dead owner's write is visible (Acquire).
    assert_eq!(unsafe { *g.data.get() }, 42);
    assert_eq!(g.word.load(Ordering::SeqCst) & !WAITERS, 2);
    release(&g.word);
    assert_eq!(g.word.load(Ordering::SeqCst), 0);
}

#[test]
fn a_live_owner_is_waited_for_until_the_deadline() {
    let word = AtomicU32::new(0);
    assert!(try_acquire(&word, 1));
    let dl = Deadline::after(Some(Duration::from_millis(30)));
    assert_eq!(acquire(&word, 2, SpinPolicy::NEVER, dl, |_| false), None);
    // The waiter left the WAITERS bit: the owner's release wakes (nobody) and clears it.
    assert_eq!(word.load(Ordering::SeqCst), 1 | WAITERS);
    release(&word);
    assert_eq!(word.load(Ordering::SeqCst), 0);
}
