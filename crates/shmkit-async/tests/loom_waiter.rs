//! loom model of the async waiter's protocol: a task runs the sleeper's half of a ring's
//! wait protocol (`WakeWord::announce`: read `seq`, raise the flag, fence; then the
//! re-check), hands
//! `(word, seq)` to a waker thread instead of sleeping, and waits to be woken; the waker
//! thread sleeps on the word (the futex model standing in for `futex_waitv`) and wakes
//! the task, which re-polls. A producer publishes once and notifies. A lost wake-up shows
//! as a deadlock (the futex model blocks an unwoken sleeper for ever).
//!
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-async --release --test loom_waiter`
//! (ci/loom.sh).
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_ring::primitive::{AtomicU32, Ordering};
use shmkit_sync::futex;
use shmkit_sync::wake::WakeWord;

struct Shared {
    wake: WakeWord,
    /// The "ring": 1 once the producer published.
    data: AtomicU32,
    /// The task's registrations, counted; the word value of the latest.
    reg_gen: AtomicU32,
    reg_seq: AtomicU32,
    /// The registration generation the waker thread has woken the task for.
    woken_gen: AtomicU32,
    /// The task finished: the waker thread may exit.
    done: AtomicU32,
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

#[test]
fn an_async_waiter_misses_no_publication() {
    model(|| {
        let s = Arc::new(Shared {
            wake: WakeWord::new(),
            data: AtomicU32::new(0),
            reg_gen: AtomicU32::new(0),
            reg_seq: AtomicU32::new(0),
            woken_gen: AtomicU32::new(0),
            done: AtomicU32::new(0),
        });

        let p = {
            let s = Arc::clone(&s);
            loom::thread::spawn(move || {
                s.data.store(1, Ordering::Release);
                s.wake.notify();
            })
        };

        // The waker thread: for each registration, sleep on its word while it holds the
        // registered value (returning on a wake or a changed value), then wake the task.
        let w = {
            let s = Arc::clone(&s);
            loom::thread::spawn(move || {
                let mut seen = 0;
                loop {
                    let g = s.reg_gen.load(Ordering::SeqCst);
                    if s.done.load(Ordering::SeqCst) != 0 {
                        return;
                    }
                    if g == seen {
                        futex::wait(&s.reg_gen, g, None);
                        continue;
                    }
                    seen = g;
                    let seq = s.reg_seq.load(Ordering::SeqCst);
                    futex::wait(s.wake.seq(), seq, None);
                    s.woken_gen.store(g, Ordering::SeqCst);
                    futex::wake_all(&s.woken_gen);
                }
            })
        };

        // The task: poll, and between polls wait to be woken by the waker thread.
        let mut g = 0;
        loop {
            if s.data.load(Ordering::Acquire) == 1 {
                break;
            }
            let ready = || s.data.load(Ordering::SeqCst) == 1;
            let seq = s.wake.announce();
            if ready() {
                continue; // ready by the re-check: poll again
            }
            // Register, then wake the waker thread (its control word).
            s.reg_seq.store(seq, Ordering::SeqCst);
            g += 1;
            s.reg_gen.store(g, Ordering::SeqCst);
            futex::wake_all(&s.reg_gen);
            // Pending until woken for this registration.
            loop {
                let w = s.woken_gen.load(Ordering::SeqCst);
                if w >= g {
                    break;
                }
                futex::wait(&s.woken_gen, w, None);
            }
        }
        // Let the waker thread go: `done`, then a changed control word and a wake.
        s.done.store(1, Ordering::SeqCst);
        s.reg_gen.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&s.reg_gen);
        p.join().unwrap();
        w.join().unwrap();
    });
}
