//! The awaited forms of [`Event::wait`], [`Semaphore::acquire`] and [`Barrier::wait`].
//!
//! All three sleep on a [`WakeWord`](shmkit_sync::wake::WakeWord) in their segment, the
//! one wake-up protocol: an awaiting task announces itself on it
//! ([`announce`](shmkit_sync::wake::WakeWord::announce)), re-checks its condition, and
//! hands the word's sequence to the waker thread; the setter (releaser, last party)
//! publishes, then notifies, which wakes the task. A task that gives up (a dropped
//! future) leaves at most the "someone may sleep" flag raised, which costs the next
//! notifier one spurious wake, never a lost one.

use crate::park::Park;
use crate::primitive::Ordering;
use crate::wrapper::Async;
use shmkit_sync::{Arrival, Barrier, Event, Semaphore};
use std::future::poll_fn;
use std::task::Poll;

impl Async<Event> {
    /// Wait until the flag is set. Cancel-safe (it takes nothing).
    pub async fn wait(&self) {
        let (flag, wake) = self.inner.wait_words();
        let is_set = || flag.load(Ordering::Acquire) != 0;
        let mut park = Park::new(self.spin);
        poll_fn(|cx| {
            if is_set() || park.spin(is_set) {
                park.done();
                return Poll::Ready(());
            }
            let seq = wake.announce();
            if is_set() {
                park.done();
                return Poll::Ready(());
            }
            park.sleep(wake.seq(), seq, cx)
        })
        .await
    }
}

impl Async<Semaphore> {
    /// Take a permit, waiting while there is none. Cancel-safe: a permit is taken only by
    /// the poll that returns (`release` wakes every sleeper, so a future dropped after
    /// it was woken takes no wake-up from another).
    pub async fn acquire(&self) {
        let sem = &self.inner;
        let (count, wake) = sem.wait_words();
        let mut park = Park::new(self.spin);
        poll_fn(|cx| {
            loop {
                if sem.try_acquire() {
                    park.done();
                    return Poll::Ready(());
                }
                // Spun until a permit showed up: try for it again.
                if !park.spin(|| count.load(Ordering::Relaxed) > 0) {
                    break;
                }
            }
            let seq = wake.announce();
            if sem.try_acquire() {
                park.done();
                return Poll::Ready(());
            }
            park.sleep(wake.seq(), seq, cx)
        })
        .await
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
        let wake = b.wake_word();
        let r = poll_fn(|cx| {
            if let Some(r) = b.departed(&a, false) {
                return Poll::Ready(r);
            }
            if park.liveness_due()
                && let Some(r) = b.departed(&a, true)
            {
                return Poll::Ready(r);
            }
            let seq = wake.announce();
            if let Some(r) = b.departed(&a, false) {
                return Poll::Ready(r);
            }
            park.sleep(wake.seq(), seq, cx)
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
