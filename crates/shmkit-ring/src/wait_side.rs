//! [`WaitSide`]: what a waiter outside this crate needs to wait for one side of a ring
//! (data to read, or room to write) without blocking a thread: the futex word pair, the
//! re-check, and the question "is the other side gone?". The async forms in
//! `shmkit-async` run the sleeper's half of the wait protocol through it
//! ([`announce`](WaitSide::announce), the same function the blocking sleep uses) and
//! hand the word to their waker thread instead of sleeping on it.
//!
//! Feature `internals` only: not covered by semver.

use crate::primitive::AtomicU32;
use crate::raw::mpmc::Mpmc;
use crate::raw::spsc::Ring;
use shmkit_sync::wake::WakeWord;

/// Which ring and which of its two wake words, or another wake word pair.
#[derive(Clone, Copy)]
pub(crate) enum Words<'a> {
    /// A byte ring; `true`: the data word (consumers wait on it), `false`: the space word.
    Ring(Ring, bool),
    /// A slot queue; as above.
    Pod(Mpmc, bool),
    /// A word pair of its own (a queue's `join` word).
    Wake(&'a WakeWord),
}

/// One side of a ring, ready to be waited for (see the module docs).
pub struct WaitSide<'a> {
    words: Words<'a>,
    ready: Box<dyn Fn() -> bool + 'a>,
    gone: Box<dyn Fn() -> bool + 'a>,
}

impl std::fmt::Debug for WaitSide<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSide").finish_non_exhaustive()
    }
}

impl<'a> WaitSide<'a> {
    /// `ready`: the condition the blocking wait re-checks; `gone`: whether the other
    /// side is gone (may ask the kernel).
    pub(crate) fn new(
        words: Words<'a>,
        ready: impl Fn() -> bool + 'a,
        gone: impl Fn() -> bool + 'a,
    ) -> Self {
        WaitSide {
            words,
            ready: Box::new(ready),
            gone: Box::new(gone),
        }
    }

    fn wake(&self) -> &WakeWord {
        match &self.words {
            Words::Ring(r, true) => &r.header().meta.data_wake,
            Words::Ring(r, false) => &r.header().meta.space_wake,
            Words::Pod(q, true) => &q.header().meta.data_wake,
            Words::Pod(q, false) => &q.header().meta.space_wake,
            Words::Wake(w) => w,
        }
    }

    /// Announce a sleeper and re-check ([`WakeWord::announce`], the first half of the
    /// blocking sleep): `None` if the side is ready now, else `Some(seq)`: wait for
    /// [`word`](Self::word) to change from `seq`.
    pub fn announce(&self) -> Option<u32> {
        let seq = self.wake().announce();
        (!(self.ready)()).then_some(seq)
    }

    /// Whether the ring's sides poll instead of waking each other (a `BusyPoll` or
    /// `Backoff` ring: its publishers never bump the word, so a waiter must poll).
    pub fn polls(&self) -> bool {
        use crate::primitive::Ordering;
        let code = match &self.words {
            Words::Ring(r, _) => r.header().meta.wait_strategy.load(Ordering::Relaxed),
            Words::Pod(q, _) => q.header().meta.wait_strategy.load(Ordering::Relaxed),
            Words::Wake(_) => return false,
        };
        crate::WaitStrategy::from_code(code) != Some(crate::WaitStrategy::Blocking)
    }

    /// Whether the side is ready now (the re-check alone, without announcing): for a
    /// waiter that spins a little before it announces itself.
    pub fn is_ready(&self) -> bool {
        (self.ready)()
    }

    /// The futex word (process-shared) to wait on.
    pub fn word(&self) -> &AtomicU32 {
        self.wake().seq()
    }

    /// Whether the other side is gone for good (a dead or closed peer); asks the kernel,
    /// so call it after a wait that nobody cut short, not on every poll.
    pub fn peer_gone(&self) -> bool {
        (self.gone)()
    }
}
