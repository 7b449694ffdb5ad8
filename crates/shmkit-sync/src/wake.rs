//! The one wake-up protocol every shmkit waiter that waits for *someone else's
//! publication* uses: a ring's consumer waiting for data, its producer waiting for room,
//! a pool's collector waiting for results, `Queue::join`, and the async reactor.
//!
//! A [`WakeWord`] is two process-shared `u32`s: a sequence the sleeper waits on with a
//! futex, and a "someone may sleep" flag, so that a waker makes a syscall only when
//! someone sleeps. The protocol is a Dekker pair made of SeqCst fences:
//!
//! | sleeper ([`WakeWord::sleep`])            | waker ([`WakeWord::notify`])                 |
//! |------------------------------------------|----------------------------------------------|
//! | `s = seq` (SeqCst)                       | publish (a Release store)                    |
//! | `sleepers = 1` (SeqCst swap)             | `fence(SeqCst)`                              |
//! | `fence(SeqCst)`; re-check the condition  | if `sleepers != 0` and `swap(0) != 0`:       |
//! | `futex_wait(seq, s, slice)`              | `seq += 1`; `futex_wake_all(seq)`            |
//!
//! By the fences, either the waker sees the flag, or the sleeper's re-check sees the
//! publication. A waker that sees the flag bumps `seq` after the sleeper read it (the
//! sleeper read `seq` before raising the flag), so the sleeper's `futex_wait` either
//! returns at once (value changed) or is queued and woken. No wake-up is lost. The first
//! waker to see the flag clears it and wakes everybody, so a burst of publications while
//! a sleeper is still waking up costs one syscall, not one per publication. A flag left
//! raised by a sleeper that gave up (a timeout, a dropped future) costs the next waker
//! one spurious `futex_wake`, never a lost message.
//!
//! Sleeps are bounded by the caller (a *slice*), so a dead peer, which wakes nobody, is
//! noticed. `tests/loom_wake.rs` model-checks the protocol, and shmkit-ring's
//! `tests/loom_spsc.rs` checks it again with a ring's publication in front of it.
//!
//! ```
//! use shmkit_sync::wake::WakeWord;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::Duration;
//!
//! let word = WakeWord::new();
//! let published = AtomicBool::new(false);
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         published.store(true, Ordering::Release);
//!         word.notify(); // a syscall only if the main thread sleeps
//!     });
//!     while !published.load(Ordering::Acquire) {
//!         word.sleep(|| published.load(Ordering::Acquire), Some(Duration::from_millis(20)));
//!     }
//! });
//! ```

use crate::futex::{self, Deadline, SpinPolicy, WaitOutcome};
use crate::primitive::{AtomicU32, Ordering, fence};
use std::time::Duration;

/// A futex sequence and a "someone may sleep" flag, `#[repr(C)]`, 8 bytes: embedded in
/// shared layouts (a ring header, a pool's control segment). All zero is its initial
/// state, so a fresh segment holds a valid one.
#[repr(C)]
#[derive(Debug)]
pub struct WakeWord {
    /// Bumped by the waker before each wake syscall; sleepers `futex_wait` on it.
    seq: AtomicU32,
    /// Nonzero while someone may be asleep on `seq`; the waker clears it and wakes all.
    sleepers: AtomicU32,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<WakeWord>() == 8);

impl Default for WakeWord {
    fn default() -> Self {
        Self::new()
    }
}

impl WakeWord {
    /// A wake word with nobody asleep (for heap-allocated layouts; in shared memory the
    /// zeroed bytes are the same state).
    pub fn new() -> Self {
        WakeWord {
            seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The wake word at byte `offset` of `seg` (4-aligned, inside the mapping: checked).
    pub fn in_segment(
        seg: &shmkit_segment::Segment,
        offset: usize,
    ) -> shmkit_segment::Result<&WakeWord> {
        let first = seg.atomic_u32(offset)?;
        seg.atomic_u32(offset + 4)?; // the second word is in the mapping too
        // SAFETY: `WakeWord` is `#[repr(C)]` of two `AtomicU32`s (size 8, align 4), and
        // `atomic_u32` checked that both words at `offset` and `offset + 4` lie inside
        // the mapping and are 4-aligned; the reference borrows `seg`, which keeps the
        // mapping alive. Any bit pattern is a valid `WakeWord`.
        Ok(unsafe { &*(first as *const AtomicU32).cast::<WakeWord>() })
    }

    /// Wake every sleeper if one is announced. Call right after publishing: a fence and
    /// a load when nobody sleeps.
    #[inline]
    pub fn notify(&self) {
        // SYNC: SeqCst fence, paired with the fence in `announce`: our publication
        // (before this fence) or the sleeper's raising of the flag is seen by the other.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0
            && self.sleepers.swap(0, Ordering::SeqCst) != 0
        {
            // SYNC: Release, paired with the sleeper's SeqCst load of `seq`: a sleeper
            // that reads the new value sees our publication.
            self.seq.fetch_add(1, Ordering::Release);
            futex::wake_all(&self.seq);
        }
    }

    /// The first half of a sleep: read the sequence, raise the flag, fence. Returns the
    /// sequence value to wait on. The caller then re-checks its condition and, if it
    /// still does not hold, waits on [`seq`](Self::seq) for that value (a futex wait, or
    /// an async reactor's `futex_waitv`). [`sleep`](Self::sleep) is this, then the wait.
    #[inline]
    pub fn announce(&self) -> u32 {
        // Read `seq` before raising the flag: a waker that clears the flag bumps `seq`
        // afterwards, so a wait on the value read here cannot miss it.
        let seq = self.seq.load(Ordering::SeqCst);
        self.sleepers.swap(1, Ordering::SeqCst);
        // SYNC: SeqCst fence, paired with the one in `notify`.
        fence(Ordering::SeqCst);
        seq
    }

    /// The futex word sleepers wait on (for a waiter that waits elsewhere, after
    /// [`announce`](Self::announce)).
    pub fn seq(&self) -> &AtomicU32 {
        &self.seq
    }

    /// Whether a sleeper is announced (a snapshot, for inspection).
    pub fn has_sleepers(&self) -> bool {
        self.sleepers.load(Ordering::Relaxed) != 0
    }

    /// The sequence's current value (a snapshot, for inspection).
    pub fn sequence(&self) -> u32 {
        self.seq.load(Ordering::Relaxed)
    }

    /// Wait until `attempt()` succeeds (`true`) or `deadline` passes (`false`): spin per
    /// `spin`, then sleep on this word, re-checking `ready()` (whether an attempt may
    /// succeed now, without taking anything) after each announcement. The wait of the
    /// objects whose only peer is the publication itself (`Event`, `Semaphore`); waits
    /// that must also notice a dead peer bound each sleep and ask between them.
    pub(crate) fn wait_for(
        &self,
        spin: SpinPolicy,
        deadline: Deadline,
        mut attempt: impl FnMut() -> bool,
        ready: impl Fn() -> bool,
    ) -> bool {
        if spin.spin_until(&mut attempt) {
            return true;
        }
        loop {
            if attempt() {
                return true;
            }
            if deadline.expired() {
                return false;
            }
            self.sleep(&ready, deadline.remaining());
        }
    }

    /// Sleep until woken, for at most `slice` (`None`: no bound, for loom models, where
    /// a lost wake-up then shows as a deadlock), unless `ready()` holds after the sleep
    /// is announced. Returns true if the sleep ran out its slice (nobody woke us): the
    /// caller's cue to ask the kernel whether its peer still lives.
    pub fn sleep(&self, ready: impl FnOnce() -> bool, slice: Option<Duration>) -> bool {
        let seq = self.announce();
        if ready() || slice == Some(Duration::ZERO) {
            return false;
        }
        futex::wait(&self.seq, seq, slice) == WaitOutcome::TimedOut
    }
}
