//! The wait/wake layer every blocking call in shmkit sits on: spin briefly, then sleep on
//! a process-shared futex word.
//!
//! The futex is *shared* (never `FUTEX_PRIVATE_FLAG`): the kernel keys it by the physical
//! page, so waiters and wakers in different processes that map the same segment meet on
//! the same word. Timeouts are relative and measured on the monotonic clock.
//!
//! Under `--cfg shmkit_loom` the futex is replaced by a faithful model (a check-and-sleep under
//! one lock, see [`wait`]), so loom checks the same loops that ship and reports a lost
//! wake-up as a deadlock.
//!
//! ```
//! use shmkit_sync::futex::{self, WaitOutcome};
//! use std::sync::atomic::AtomicU32;
//! use std::time::Duration;
//!
//! let word = AtomicU32::new(0);
//! // The word is not 1, so the wait returns at once.
//! assert_eq!(futex::wait(&word, 1, Some(Duration::from_millis(1))), WaitOutcome::ValueChanged);
//! // Nobody wakes us: the wait times out.
//! assert_eq!(futex::wait(&word, 0, Some(Duration::from_millis(1))), WaitOutcome::TimedOut);
//! assert_eq!(futex::wake(&word, 1), 0);
//! ```

use std::time::{Duration, Instant};

use crate::primitive::AtomicU32;

/// Why [`wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by [`wake`] — or spuriously (a signal, or loom): re-check the condition.
    Woken,
    /// The timeout passed.
    TimedOut,
    /// The word did not hold `expected` when the wait began.
    ValueChanged,
}

/// Sleep while `*word == expected`, for at most `timeout` (`None`: until woken).
#[cfg(not(shmkit_loom))]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
    use rustix::thread::futex;
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => WaitOutcome::Woken,
        Err(rustix::io::Errno::AGAIN) => WaitOutcome::ValueChanged,
        Err(rustix::io::Errno::TIMEDOUT) => WaitOutcome::TimedOut,
        // EINTR (a signal) and anything unexpected: a spurious wake-up; callers re-check.
        Err(_) => WaitOutcome::Woken,
    }
}

/// Loom: a faithful futex model. An untimed wait checks the word and sleeps on a
/// condition variable under one table lock, as the kernel checks and queues under its
/// hash-bucket lock; a wake takes the same lock and wakes everyone (spurious wake-ups
/// are allowed). A waiter nobody wakes blocks forever, which loom reports as a
/// deadlock: that is how the models catch a lost wake-up. A timed wait models its
/// timeout expiring.
#[cfg(shmkit_loom)]
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
    use crate::primitive::Ordering;
    let (lock, cv) = &*loom_model::TABLE;
    let guard = lock.lock().expect("loom futex table");
    if word.load(Ordering::SeqCst) != expected {
        return WaitOutcome::ValueChanged;
    }
    if timeout.is_some() {
        drop(guard);
        loom::thread::yield_now();
        return WaitOutcome::TimedOut;
    }
    drop(cv.wait(guard).expect("loom futex table"));
    WaitOutcome::Woken
}

#[cfg(shmkit_loom)]
mod loom_model {
    loom::lazy_static! {
        pub(super) static ref TABLE: (loom::sync::Mutex<()>, loom::sync::Condvar) =
            (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
    }
}

/// Wake up to `n` sleepers on `word`; returns how many were woken.
#[cfg(not(shmkit_loom))]
pub fn wake(word: &AtomicU32, n: u32) -> u32 {
    rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), n).unwrap_or(0) as u32
}

/// Loom: wake every modelled sleeper (see [`wait`]).
#[cfg(shmkit_loom)]
pub fn wake(_word: &AtomicU32, _n: u32) -> u32 {
    let (lock, cv) = &*loom_model::TABLE;
    let _guard = lock.lock().expect("loom futex table");
    cv.notify_all();
    0
}

/// Wake every sleeper on `word`.
pub fn wake_all(word: &AtomicU32) -> u32 {
    wake(word, i32::MAX as u32)
}

/// How long a waiter spins before it sleeps.
///
/// ```
/// use shmkit_sync::{Event, SpinPolicy};
/// // Sleep at once: for a waiter that shares its core with the process it waits for.
/// let mut ev = Event::anonymous()?;
/// ev.set_spin_policy(SpinPolicy::NEVER);
/// // Spin long: for a latency-critical waiter with a core of its own.
/// let busy = SpinPolicy { spins: 2000, yields: 0 };
/// assert!(busy.spin_until(|| true));
/// # let _ = ev;
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
///
/// On a 2-core VM a futex sleep + wake costs 20-30 us each way, while a cache-line
/// handoff costs under 100 ns: spinning a few microseconds catches a peer that is about
/// to release, and sleeping beyond that stops a waiter from stealing the core its peer
/// needs. See docs/sync.md for the measurement behind [`SpinPolicy::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpinPolicy {
    /// Checks with `spin_loop` hints before yielding.
    pub spins: u32,
    /// `yield_now` calls before sleeping on the futex.
    pub yields: u32,
}

impl SpinPolicy {
    /// 100 spins (a few microseconds), then 30 yields, then sleep: chosen from
    /// `benches/sync.rs` (`event_pingpong/shmkit_spin*`) on a quiet and on a loaded
    /// 2-core VM (see docs/sync.md). The yields hand the core to a peer that shares it.
    pub const DEFAULT: SpinPolicy = SpinPolicy {
        spins: 100,
        yields: 30,
    };
    /// Sleep at once (for tests and for cores that are oversubscribed).
    pub const NEVER: SpinPolicy = SpinPolicy {
        spins: 0,
        yields: 0,
    };

    /// Spin and yield per this policy until `ready()` holds; `true` if it did before the
    /// budget ran out.
    pub fn spin_until(&self, mut ready: impl FnMut() -> bool) -> bool {
        for _ in 0..self.spins {
            if ready() {
                return true;
            }
            core::hint::spin_loop();
        }
        for _ in 0..self.yields {
            if ready() {
                return true;
            }
            std::thread::yield_now();
        }
        ready()
    }
}

impl Default for SpinPolicy {
    fn default() -> Self {
        SpinPolicy::DEFAULT
    }
}

/// An optional point in time a blocking call must return by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now; `None` means never.
    pub fn after(timeout: Option<Duration>) -> Deadline {
        Deadline(timeout.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future)))
    }

    /// No deadline.
    pub const NEVER: Deadline = Deadline(None);

    /// Time left (`None`: no deadline; `Some(ZERO)`: expired).
    pub fn remaining(&self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }

    /// The shorter of the time left and `slice`: how long one bounded sleep may last.
    pub fn slice(&self, slice: Duration) -> Duration {
        self.remaining().map_or(slice, |r| r.min(slice))
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
