//! Loom model of the robust lock's state machine (`lock::acquire` / `release`), the code
//! every Mutex, RLock, Value, Array and Dict runs.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_mutex`
#![cfg(shmkit_loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use shmkit_sync::futex::{Deadline, SpinPolicy};
use shmkit_sync::primitive::{AtomicU32, Ordering};
use shmkit_sync::raw::{Acquired, acquire, release};

#[test]
fn two_lockers_exclude_each_other_and_nobody_sleeps_forever() {
    loom::model(|| {
        let word = Arc::new(AtomicU32::new(0));
        let data = Arc::new(UnsafeCell::new(0u32));
        let threads: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|token| {
                let (word, data) = (word.clone(), data.clone());
                loom::thread::spawn(move || {
                    let got = acquire(&word, token, SpinPolicy::NEVER, Deadline::NEVER, |_| false);
                    assert_eq!(got, Some(Acquired::Clean));
                    // SAFETY: the lock is held; loom checks no other access overlaps.
                    data.with_mut(|p| unsafe { *p += 1 });
                    release(&word);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: every thread has been joined.
        assert_eq!(data.with(|p| unsafe { *p }), 2);
        assert_eq!(word.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_dead_owners_lock_is_taken_over_with_owner_died() {
    loom::model(|| {
        let word = Arc::new(AtomicU32::new(0));
        let data = Arc::new(UnsafeCell::new(0u32));
        let (w, d) = (word.clone(), data.clone());
        // Token 1 takes the lock, writes, and "dies": it never releases.
        let dead = loom::thread::spawn(move || {
            assert!(shmkit_sync::raw::try_acquire(&w, 1));
            // SAFETY: the lock is held.
            d.with_mut(|p| unsafe { *p = 42 });
        });
        dead.join().unwrap();
        let got = acquire(&word, 2, SpinPolicy::NEVER, Deadline::NEVER, |owner| {
            owner == 1
        });
        assert_eq!(got, Some(Acquired::OwnerDied));
        // SAFETY: the lock is held; the dead owner's write is visible (Acquire).
        assert_eq!(data.with(|p| unsafe { *p }), 42);
        assert_eq!(word.load(Ordering::SeqCst) & !shmkit_sync::raw::WAITERS, 2);
    });
}
