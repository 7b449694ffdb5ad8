//! Loom model of `Semaphore`'s acquire/release protocol (a permit count the waiters
//! sleep on, a waiter count ordered by read-modify-writes): with the futex modelled
//! faithfully, a lost wake-up leaves a waiter blocked forever, which loom reports as a
//! deadlock; a permit handed out twice shows as a count that wraps below zero.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_semaphore`
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_sync::futex;
use shmkit_sync::primitive::{AtomicU32, Ordering};

/// The same protocol as `Semaphore::acquire` / `Semaphore::release` (which sit on a
/// mapped segment that loom cannot allocate), over heap atomics, without the spin phase
/// and the deadline (neither changes the ordering argument).
struct Sem {
    count: AtomicU32,
    waiters: AtomicU32,
}

impl Sem {
    fn try_acquire(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c > 0 {
            match self
                .count
                .compare_exchange(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    fn acquire(&self) {
        if self.try_acquire() {
            return;
        }
        self.waiters.fetch_add(1, Ordering::AcqRel);
        while !self.try_acquire() {
            futex::wait(&self.count, 0, None);
        }
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }

    fn release(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        if self.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake(&self.count, 1);
        }
    }
}

#[test]
fn every_release_lets_one_waiter_through() {
    loom::model(|| {
        let sem = Arc::new(Sem {
            count: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        });
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let s = sem.clone();
                loom::thread::spawn(move || s.acquire())
            })
            .collect();
        sem.release();
        sem.release();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(
            sem.count.load(Ordering::Relaxed),
            0,
            "each permit taken once"
        );
    });
}

#[test]
fn a_permit_is_never_taken_twice() {
    loom::model(|| {
        let sem = Arc::new(Sem {
            count: AtomicU32::new(1),
            waiters: AtomicU32::new(0),
        });
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
