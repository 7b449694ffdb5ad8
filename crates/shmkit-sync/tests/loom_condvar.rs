//! Loom model of `Condvar`'s notify/wait protocol, the one waiter in this crate that does
//! not sleep on a `WakeWord` (its `notify_one` wakes one sleeper; the wake word's single
//! "someone may sleep" flag can only wake them all, see docs/sync.md): a sequence the
//! waiters sleep on and a waiter count, ordered by read-modify-writes on the count. With
//! the futex modelled faithfully, a lost wake-up leaves the waiter blocked forever, which
//! loom reports as a deadlock.
//!
//! The model replays `Condvar::wait` / `notify_one` (which sit on a mapped segment that
//! loom cannot allocate) over heap atomics, without the mutex: the waiter reads the
//! sequence first, as it does under the lock, and the notifier's change comes after.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_condvar`
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_sync::futex;
use shmkit_sync::primitive::{AtomicU32, Ordering};

/// `CondState`'s two words and the two halves of the protocol.
struct Cv {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl Cv {
    /// `Condvar::wait` after the sequence was read under the lock (`seen`).
    fn wait(&self, seen: u32) {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        while self.seq.load(Ordering::Acquire) == seen {
            futex::wait(&self.seq, seen, None);
        }
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// `Condvar::notify_one`.
    fn notify_one(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        if self.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake(&self.seq, 1);
        }
    }
}

#[test]
fn a_notify_after_the_read_always_releases_the_waiter() {
    loom::model(|| {
        let cv = Arc::new(Cv {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        });
        let seen = cv.seq.load(Ordering::Acquire);
        let c = cv.clone();
        let waiter = loom::thread::spawn(move || c.wait(seen));
        cv.notify_one();
        waiter.join().unwrap();
    });
}
