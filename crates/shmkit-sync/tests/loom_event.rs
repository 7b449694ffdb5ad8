//! Loom model of `Event`'s wait/set protocol (sleeper count + flag, RMW-ordered): with the
//! futex modelled faithfully, a lost wake-up would leave the waiter blocked forever,
//! which loom reports as a deadlock.
//!
//! This model caught a real weakness: the first version paired plain SeqCst stores and
//! loads (a Dekker pattern, correct on x86 where a SeqCst store is a full fence, but
//! loom models SeqCst as AcqRel and found the lost wake-up). Ordering the two sides
//! through read-modify-writes on `waiters` holds under any model.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_event`
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_sync::futex;
use shmkit_sync::primitive::{AtomicU32, Ordering};

/// The same protocol as `Event::set` / `Event::wait` (which sit on a mapped segment that
/// loom cannot allocate), over heap atomics.
struct Ev {
    flag: AtomicU32,
    waiters: AtomicU32,
}

impl Ev {
    fn set(&self) {
        self.flag.swap(1, Ordering::AcqRel);
        if self.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake_all(&self.flag);
        }
    }

    fn wait(&self) {
        if self.flag.load(Ordering::Acquire) != 0 {
            return;
        }
        self.waiters.fetch_add(1, Ordering::AcqRel);
        while self.flag.load(Ordering::Acquire) == 0 {
            futex::wait(&self.flag, 0, None);
        }
        self.waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

#[test]
fn set_always_releases_a_waiter() {
    loom::model(|| {
        let ev = Arc::new(Ev {
            flag: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        });
        let e = ev.clone();
        let waiter = loom::thread::spawn(move || e.wait());
        ev.set();
        waiter.join().unwrap();
    });
}
