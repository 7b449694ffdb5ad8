//! The wait layer every ring sits on: how a side that finds nothing to do waits, per the
//! ring's [`WaitStrategy`], and how the other side wakes it.
//!
//! `Blocking` rings use shmkit-sync's one wake-up protocol ([`WakeWord`]: a Dekker pair
//! of SeqCst fences, so a publisher makes a syscall only when someone sleeps, and no
//! wake-up is lost). `BusyPoll` and `Backoff` rings never sleep on the futex, so their
//! publishers skip the fence and the sleeper check: they cannot lose a message, only add
//! latency (a poller finds every message by polling). Every wait is bounded by a *slice*
//! so a dead peer, which wakes nobody, is noticed.

use crate::primitive::Ordering;
use shmkit_sync::SpinPolicy;
use shmkit_sync::wake::WakeWord;
use std::time::{Duration, Instant};

/// Longest single wait before the caller checks its peer's liveness: how quickly a dead
/// peer is noticed at worst.
pub const SLICE: Duration = Duration::from_millis(20);

/// A `Backoff` waiter's first sleep.
pub const BACKOFF_MIN: Duration = Duration::from_micros(1);

/// A `Backoff` waiter's longest sleep: the most latency [`WaitStrategy::Backoff`] adds
/// to a message (plus the kernel's timer slack, 50 us by default on Linux).
pub const BACKOFF_MAX: Duration = Duration::from_micros(500);

/// How the sides of a ring wait for each other, fixed when the ring is created and
/// recorded in its header, so the two sides can never disagree (the way Aeron's idle
/// strategies and the Disruptor's wait strategies are chosen per channel).
///
/// | strategy   | an idle waiter                          | a publisher pays            | added latency        |
/// |------------|-----------------------------------------|-----------------------------|----------------------|
/// | `Blocking` | spins briefly, yields, sleeps on a futex | a SeqCst fence per message; a wake syscall only if someone sleeps | a kernel wake-up (20-60 us) once asleep |
/// | `BusyPoll` | spins on the ring: one core at 100 %    | nothing                     | none                 |
/// | `Backoff`  | spins, yields, then sleeps 1 us .. 500 us, doubling | nothing          | at most [`BACKOFF_MAX`] + timer slack |
///
/// ```
/// use shmkit_ring::{spsc, WaitStrategy};
/// let (mut tx, mut rx) = spsc::builder(1 << 12).wait(WaitStrategy::BusyPoll).create()?;
/// tx.send(b"no fence, no syscall")?;
/// assert_eq!(rx.recv_vec()?, b"no fence, no syscall");
/// assert_eq!(rx.wait_strategy(), WaitStrategy::BusyPoll);
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
///
/// Choose `BusyPoll` only when the waiting side has a core of its own; on an
/// oversubscribed machine it steals the core its peer needs. `Backoff` gives most of
/// `BusyPoll`'s throughput at a small idle cost; `Blocking` is the default, idle at zero
/// CPU. docs/ring.md has the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WaitStrategy {
    /// Spin, yield, then sleep on the futex; publishers wake sleepers (the default).
    #[default]
    Blocking,
    /// Never sleep: spin on the ring. Publishers do no fence and no sleeper check.
    BusyPoll,
    /// Spin, yield, then short sleeps growing to [`BACKOFF_MAX`], with no wake-up from
    /// the publisher (no fence).
    Backoff,
}

impl WaitStrategy {
    /// The code recorded in a ring header.
    pub(crate) const fn code(self) -> u32 {
        match self {
            WaitStrategy::Blocking => 0,
            WaitStrategy::BusyPoll => 1,
            WaitStrategy::Backoff => 2,
        }
    }

    /// The strategy a header's code names, if any.
    pub(crate) const fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(WaitStrategy::Blocking),
            1 => Some(WaitStrategy::BusyPoll),
            2 => Some(WaitStrategy::Backoff),
            _ => None,
        }
    }

    /// Read and validate the strategy a header records.
    pub(crate) fn load(word: &crate::primitive::AtomicU32, name: &str) -> crate::Result<Self> {
        // Relaxed: written once before the segment was published as ready.
        let code = word.load(Ordering::Relaxed);
        WaitStrategy::from_code(code).ok_or_else(|| crate::Error::Corrupted {
            name: name.to_owned(),
            what: format!("unknown wait strategy code {code}"),
        })
    }

    /// The strategy's name as `shmkit inspect` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitStrategy::Blocking => "blocking",
            WaitStrategy::BusyPoll => "busy-poll",
            WaitStrategy::Backoff => "backoff",
        }
    }
}

impl WaitStrategy {
    /// After publishing: wake `w`'s sleepers if the strategy has any (`Blocking`: a fence
    /// and a load when nobody sleeps; the others: nothing at all).
    #[inline]
    pub fn notify(self, w: &WakeWord) {
        if self == WaitStrategy::Blocking {
            w.notify();
        }
    }

    /// The spin a waiter does before [`park`](Self::park): `spin` itself, except on a
    /// `BusyPoll` ring, whose park is already a tight poll — the policy's
    /// `sched_yield`s there only added a system call's return to the latency of a
    /// message that came in meanwhile.
    #[inline]
    pub fn spin_before_park(self, spin: SpinPolicy) -> SpinPolicy {
        match self {
            WaitStrategy::BusyPoll => SpinPolicy::NEVER,
            _ => spin,
        }
    }

    /// Wait until `ready()` holds or `slice` passes, per this strategy. Returns true if the
    /// slice ran out with nobody waking us: the caller's cue to ask the kernel whether its
    /// peer still lives (and to check its deadline). Spurious early returns are allowed;
    /// callers loop.
    pub fn park(self, w: &WakeWord, ready: impl Fn() -> bool, slice: Duration) -> bool {
        match self {
            WaitStrategy::Blocking => w.sleep(ready, Some(slice)),
            WaitStrategy::BusyPoll => {
                // The clock is first read after 256 polls, not on entry: most waits of a
                // busy-polled ring end sooner, and a clock read costs ~26 ns on this
                // project's VMs (a whole busy-poll round trip is ~150 ns).
                let mut start = None;
                loop {
                    // A clock read every 256 polls keeps the poll tight.
                    for _ in 0..256 {
                        if ready() {
                            return false;
                        }
                        std::hint::spin_loop();
                    }
                    if start.get_or_insert_with(Instant::now).elapsed() >= slice {
                        return true;
                    }
                }
            }
            WaitStrategy::Backoff => {
                let start = Instant::now();
                let mut nap = BACKOFF_MIN;
                loop {
                    if ready() {
                        return false;
                    }
                    let spent = start.elapsed();
                    if spent >= slice {
                        return true;
                    }
                    std::thread::sleep(nap.min(slice - spent));
                    nap = (nap * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

impl std::fmt::Display for WaitStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sleep on `w` until woken (no timeout) unless `ready()` holds: for loom models, where
/// a lost wake-up then shows as a deadlock.
pub fn sleep_until_woken(w: &WakeWord, ready: impl Fn() -> bool) {
    w.sleep(ready, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_busy_poll_skips_the_spin_before_its_park() {
        let spin = SpinPolicy::DEFAULT;
        assert_eq!(
            WaitStrategy::BusyPoll.spin_before_park(spin),
            SpinPolicy::NEVER
        );
        assert_eq!(WaitStrategy::Blocking.spin_before_park(spin), spin);
        assert_eq!(WaitStrategy::Backoff.spin_before_park(spin), spin);
    }
}
