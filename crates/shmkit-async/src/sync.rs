//! The awaited forms of [`Event::wait`], [`Semaphore::acquire`] and [`Barrier::wait`].
//!
//! Both primitives keep a waiter count next to the futex word: the setter (releaser)
//! issues a wake only when it is nonzero. An awaiting task raises the count before its
//! last look at the word and holds it while registered; [`Counted`] lowers it when the
//! wait ends or the future is dropped, so a cancelled wait leaves no count behind.

use crate::park::Park;
use crate::primitive::{AtomicU32, Ordering};
use crate::wrapper::Async;
use shmkit_sync::{Arrival, Barrier, Event, Semaphore};
use std::future::poll_fn;
use std::task::Poll;

/// A raised waiter count, lowered on drop.
#[derive(Debug, Default)]
struct Counted<'a>(Option<&'a AtomicU32>);

impl<'a> Counted<'a> {
    fn raise(&mut self, waiters: &'a AtomicU32) {
        if self.0.is_none() {
            // SYNC: an RMW, as the blocking wait's: ordered against the setter's RMW on
            // the same count (see `Event::set`), so either the setter sees it and wakes
            // the word, or our re-check after it sees the flag.
            waiters.fetch_add(1, Ordering::AcqRel);
            self.0 = Some(waiters);
        }
    }

    fn lower(&mut self) {
        if let Some(w) = self.0.take() {
            w.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.lower();
    }
}

impl Async<Event> {
    /// Wait until the flag is set. Cancel-safe (it takes nothing; dropping it lowers the
    /// waiter count it raised).
    pub async fn wait(&self) {
        let (flag, waiters) = self.inner.wait_words();
        let mut park = Park::new(self.spin);
        let mut counted = Counted::default();
        poll_fn(|cx| {
            if flag.load(Ordering::Acquire) != 0 {
                park.done();
                counted.lower();
                return Poll::Ready(());
            }
            if park.spin(|| flag.load(Ordering::Acquire) != 0) {
                park.done();
                return Poll::Ready(());
            }
            counted.raise(waiters);
            if flag.load(Ordering::Acquire) != 0 {
                park.done();
                counted.lower();
                return Poll::Ready(());
            }
            park.sleep(flag, 0, cx)
        })
        .await
    }
}

impl Async<Semaphore> {
    /// Take a permit, waiting while there is none. Cancel-safe: a permit is taken only by
    /// the poll that returns; a future dropped after it was woken passes the wake-up on
    /// (the permit it did not take may be another sleeper's).
    pub async fn acquire(&self) {
        let (count, waiters) = self.inner.wait_words();
        let mut park = Park::new(self.spin);
        let mut counted = Counted::default();
        let mut acquire = Acquire {
            sem: &self.inner,
            count,
            done: false,
        };
        poll_fn(|cx| {
            loop {
                if acquire.sem.try_acquire() {
                    acquire.done = true;
                    park.done();
                    counted.lower();
                    return Poll::Ready(());
                }
                // Spun until a permit showed up: try for it again.
                if !park.spin(|| count.load(Ordering::Relaxed) > 0) {
                    break;
                }
            }
            counted.raise(waiters);
            if acquire.sem.try_acquire() {
                acquire.done = true;
                park.done();
                counted.lower();
                return Poll::Ready(());
            }
            park.sleep(count, 0, cx)
        })
        .await
    }
}

/// A semaphore acquisition in progress: dropped unfinished while permits are there, it
/// wakes one sleeper in its place (`release` wakes only one: it may have been us).
struct Acquire<'a> {
    sem: &'a Semaphore,
    count: &'a AtomicU32,
    done: bool,
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        if !self.done && self.sem.value() > 0 {
            shmkit_sync::futex::wake(self.count, 1);
        }
    }
}

impl Async<Barrier> {
    /// Wait for the other parties; returns this caller's arrival index, like
    /// [`Barrier::wait`] (a dead participant or a break ends it with
    /// [`BrokenBarrier`](shmkit_sync::Error::BrokenBarrier)).
    ///
    /// Cancelling it is not free: an arrival cannot be taken back, so a `wait` dropped
    /// while the others are still to come **breaks the barrier** for everyone, as the
    /// blocking `wait_timeout` does when its time runs out (`reset` makes it usable
    /// again). A `wait` dropped after the round completed changes nothing.
    pub async fn wait(&self) -> shmkit_sync::Result<u32> {
        let b = &self.inner;
        let a = b.arrive()?;
        if a.tripped {
            return Ok(a.index);
        }
        let mut park = Park::new(self.spin);
        let mut pending = BreakOnDrop(Some((b, a)));
        let r = poll_fn(|cx| {
            if let Some(r) = b.departed(&a, false) {
                return Poll::Ready(r);
            }
            if park.liveness_due()
                && let Some(r) = b.departed(&a, true)
            {
                return Poll::Ready(r);
            }
            park.sleep(b.generation_word(), a.generation, cx)
        })
        .await;
        park.done();
        pending.0 = None;
        r
    }
}

/// Breaks the barrier if the wait holding it is dropped before the round completes.
struct BreakOnDrop<'a>(Option<(&'a Barrier, Arrival)>);

impl Drop for BreakOnDrop<'_> {
    fn drop(&mut self) {
        if let Some((b, a)) = self.0
            && b.departed(&a, false).is_none()
        {
            b.break_barrier("a waiting participant's future was dropped".into());
        }
    }
}
