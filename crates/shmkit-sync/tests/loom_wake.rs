//! Loom model of the one wake-up protocol (`shmkit_sync::wake::WakeWord`), the one ring
//! consumers and producers, the pool's collector, `Queue::join` and the async reactor
//! all use. The sleeper sleeps with no timeout and the futex is modelled faithfully, so
//! a lost wake-up leaves it blocked forever, which loom reports as a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-sync --release --test loom_wake`
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_sync::primitive::{AtomicU32, Ordering};
use shmkit_sync::wake::WakeWord;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

struct Shared {
    word: WakeWord,
    published: AtomicU32,
}

/// One publisher, one sleeper.
#[test]
fn one_waker_no_lost_wakeup() {
    model(|| {
        let s = Arc::new(Shared {
            word: WakeWord::new(),
            published: AtomicU32::new(0),
        });
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            s2.published.store(1, Ordering::Release);
            s2.word.notify();
        });
        while s.published.load(Ordering::Acquire) == 0 {
            s.word
                .sleep(|| s.published.load(Ordering::Acquire) != 0, None);
        }
        t.join().unwrap();
    });
}

/// Two publishers (workers ringing the pool's doorbell), one sleeper waiting for both:
/// the first waker clears the flag, the sleeper re-announces, the second must still
/// wake it.
#[test]
fn two_wakers_no_lost_wakeup() {
    model(|| {
        let s = Arc::new(Shared {
            word: WakeWord::new(),
            published: AtomicU32::new(0),
        });
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let s2 = s.clone();
                loom::thread::spawn(move || {
                    s2.published.fetch_add(1, Ordering::Release);
                    s2.word.notify();
                })
            })
            .collect();
        while s.published.load(Ordering::Acquire) < 2 {
            s.word
                .sleep(|| s.published.load(Ordering::Acquire) == 2, None);
        }
        for t in ts {
            t.join().unwrap();
        }
    });
}
