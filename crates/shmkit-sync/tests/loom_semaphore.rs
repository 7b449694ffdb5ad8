//! Loom model of `Semaphore`'s acquire/release protocol: a permit count, then the one
//! wake word (`shmkit_sync::wake::WakeWord`), which wakes every sleeper (they race for
//! the permit; the losers announce and sleep again). The model runs the shipped code
//! (`raw::SemState`, what `Semaphore` runs on its mapped segment) on the heap. With the
//! futex modelled faithfully, a lost wake-up leaves a waiter blocked forever, which loom
//! reports as a deadlock; a permit handed out twice shows as a count that wraps below
//! zero.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_semaphore`
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_sync::SpinPolicy;
use shmkit_sync::futex::Deadline;
use shmkit_sync::raw::SemState;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn acquire(sem: &SemState) {
    assert!(sem.acquire(SpinPolicy::NEVER, Deadline::NEVER));
}

#[test]
fn every_release_lets_one_waiter_through() {
    model(|| {
        let sem = Arc::new(SemState::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = sem.clone();
                loom::thread::spawn(move || acquire(&s))
            })
            .collect();
        sem.release();
        sem.release();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(sem.value(), 0, "each permit taken once");
    });
}

/// A waiter woken by a release whose permit another taker got first sleeps again and is
/// woken by the next release.
#[test]
fn a_waiter_that_loses_the_race_is_woken_again() {
    model(|| {
        let sem = Arc::new(SemState::new(0));
        let s = sem.clone();
        let waiter = loom::thread::spawn(move || acquire(&s));
        let s = sem.clone();
        let taker = loom::thread::spawn(move || {
            s.release();
            // Takes the permit just released, if the waiter has not.
            if s.try_acquire() {
                s.release();
            }
        });
        taker.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(sem.value(), 0);
    });
}

#[test]
fn a_permit_is_never_taken_twice() {
    model(|| {
        let sem = Arc::new(SemState::new(1));
        let s = sem.clone();
        let other = loom::thread::spawn(move || s.try_acquire());
        let mine = sem.try_acquire();
        let theirs = other.join().unwrap();
        assert!(
            mine ^ theirs,
            "exactly one of two takers gets the one permit"
        );
    });
}
