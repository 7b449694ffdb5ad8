//! The wait layer shared by every ring: spin, then sleep on a futex word in bounded
//! slices; wake only when a sleeper is announced.
//!
//! The protocol (a Dekker pair made of SeqCst fences). `sleepers` is a flag: nonzero
//! means "someone may be asleep"; the first waker to see it clears it and wakes
//! everybody, so a burst of publications while a sleeper is still waking up costs one
//! syscall, not one per publication.
//!
//! | sleeper                                 | waker                                        |
//! |-----------------------------------------|----------------------------------------------|
//! | `s = seq` (SeqCst)                      | publish (`tail`/`head` Release store)        |
//! | `sleepers = 1` (SeqCst swap)            | `fence(SeqCst)`                              |
//! | `fence(SeqCst)`; re-check condition     | if `sleepers != 0` and `swap(0) != 0`:       |
//! | `futex_wait(seq, s, slice)`             | `seq += 1`; `futex_wake_all(seq)`            |
//!
//! By the fences, either the waker sees the flag, or the sleeper's re-check sees the
//! publication. A waker that sees the flag bumps `seq` after the sleeper read it (the
//! sleeper read `seq` before raising the flag), so the sleeper's `futex_wait` either
//! returns at once (value changed) or is queued and woken. No wake-up is lost. Slices
//! bound every sleep so a dead peer (which wakes nobody) is noticed.

use crate::primitive::{Ordering, fence};
use crate::raw::spsc::Wake;
use shmkit_sync::futex;
use std::time::Duration;

/// Longest single futex sleep: how quickly a dead peer is noticed at worst.
pub const SLICE: Duration = Duration::from_millis(20);

/// Wake sleepers on `w` if any are announced. Call after publishing. (`_all` is
/// kept for call sites' documentation; every sleeper is woken, see the module docs.)
#[inline]
pub fn notify(w: &Wake, _all: bool) {
    // SYNC: SeqCst fence, paired with the fence in `sleep`: our publication (before
    // this fence) or the sleeper's raising of the flag is seen by the other side.
    fence(Ordering::SeqCst);
    if w.sleepers.load(Ordering::Relaxed) != 0 && w.sleepers.swap(0, Ordering::SeqCst) != 0 {
        // SYNC: Release, paired with the sleeper's SeqCst load of `seq`: a sleeper that
        // reads the new value sees our publication.
        w.seq.fetch_add(1, Ordering::Release);
        futex::wake_all(&w.seq);
    }
}

/// Wake sleepers on `w` if any are announced, right after publishing. Kept as a
/// separate name for the ring's hot paths; it is [`notify`] (an earlier fence-free
/// variant relied on SeqCst stores, which loom models only as AcqRel, so it could not
/// be model-checked; the fence version is, in `tests/loom_spsc.rs`).
#[inline]
pub fn notify_published(w: &Wake, all: bool) {
    notify(w, all);
}

/// Sleep on `w` for at most `slice` unless `ready()` already holds.
/// Returns true if the sleep ran out its slice (nobody woke us): the caller's cue to
/// ask the kernel whether its peer still lives.
pub fn sleep(w: &Wake, ready: impl Fn() -> bool, slice: Duration) -> bool {
    sleep_inner(w, ready, Some(slice))
}

/// Sleep on `w` until woken (no timeout) unless `ready()` holds: for loom models, where
/// a lost wake-up then shows as a deadlock.
pub fn sleep_until_woken(w: &Wake, ready: impl Fn() -> bool) {
    sleep_inner(w, ready, None);
}

fn sleep_inner(w: &Wake, ready: impl Fn() -> bool, slice: Option<Duration>) -> bool {
    let mut timed_out = false;
    if let Some(seq) = announce(w, ready)
        && slice != Some(Duration::ZERO)
    {
        timed_out = futex::wait(&w.seq, seq, slice) == futex::WaitOutcome::TimedOut;
    }
    timed_out
}

/// The sleeper's half of the protocol without the sleep: read `seq`, raise the flag,
/// fence, re-check `ready()`. `None` if it holds (do not sleep); else `Some(seq)`:
/// sleep on `w.seq` while it still holds that value. [`sleep`] is this plus a
/// `futex_wait`; the async waiters (shmkit-async) hand the pair to their waker thread
/// instead.
pub fn announce(w: &Wake, ready: impl Fn() -> bool) -> Option<u32> {
    // Read `seq` before raising the flag: a waker that clears the flag bumps `seq`
    // afterwards, so a wait on the value read here cannot miss it.
    let seq = w.seq.load(Ordering::SeqCst);
    w.sleepers.swap(1, Ordering::SeqCst);
    // SYNC: SeqCst fence, paired with the one in `notify`.
    fence(Ordering::SeqCst);
    (!ready()).then_some(seq)
}
