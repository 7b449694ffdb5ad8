//! Loom model of `Event`'s set/clear/wait protocol: the flag, then the one wake word
//! (`shmkit_sync::wake::WakeWord`). The model runs the shipped code (`raw::EventState`,
//! what `Event` runs on its mapped segment) on the heap. The waiter sleeps with no
//! deadline and the futex is modelled faithfully, so a lost wake-up leaves it blocked
//! forever, which loom reports as a deadlock.
//!
//! An earlier version ordered a waiter count against the flag with plain SeqCst stores
//! and loads (a Dekker pattern, correct on x86 where a SeqCst store is a full fence, but
//! loom models SeqCst as AcqRel and found the lost wake-up); the wake word's sides are
//! SeqCst fences, which hold under any model.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_event`
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_sync::SpinPolicy;
use shmkit_sync::futex::Deadline;
use shmkit_sync::raw::EventState;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// `waiters` threads waiting on a fresh event (no deadline: a lost wake-up deadlocks)
/// while `setter` runs on this one; every waiter must return with the flag set.
fn run(waiters: usize, setter: impl Fn(&EventState)) {
    let ev = Arc::new(EventState::new());
    let threads: Vec<_> = (0..waiters)
        .map(|_| {
            let e = ev.clone();
            loom::thread::spawn(move || assert!(e.wait(SpinPolicy::NEVER, Deadline::NEVER)))
        })
        .collect();
    setter(&ev);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn set_always_releases_a_waiter() {
    model(|| run(1, EventState::set));
}

/// Two waiters, one `set`: the one notify (which clears the flag and wakes all) must
/// release both, whichever announced first.
#[test]
fn one_set_releases_every_waiter() {
    model(|| run(2, EventState::set));
}

/// A `clear` between two `set`s: the waiter may miss the first set (cleared before it
/// looked), never the second.
#[test]
fn set_clear_set_releases_a_waiter() {
    model(|| {
        run(1, |ev| {
            ev.set();
            ev.clear();
            ev.set();
        })
    });
}
