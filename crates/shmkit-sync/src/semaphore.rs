//! `Semaphore` — Python's `multiprocessing.Semaphore`.

use std::time::Duration;

use shmkit_segment::{Kind, SegmentHandle};

use crate::futex::{Deadline, SpinPolicy};
use crate::lock::Handle;
use crate::primitive::{AtomicU32, Ordering};
use crate::small::AtomicsSegment;
use crate::wake::WakeWord;
use crate::{Error, Open, Result};

/// The payload of a `Semaphore` segment (docs/sync.md), 12 bytes, and the semaphore's
/// whole protocol: [`Semaphore`] runs it on a mapped segment, `tests/loom_semaphore.rs`
/// on the heap (public as `raw::SemState` with the feature `internals`, not covered by
/// semver).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
pub struct SemState {
    /// Available permits.
    count: AtomicU32,
    /// Waiters sleep here while `count` is 0; `release` notifies it (the one wake-up
    /// protocol).
    wake: WakeWord,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(size_of::<SemState>() == 12 && align_of::<SemState>() == 4);

#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
impl SemState {
    /// A semaphore with `permits` permits (for a heap model).
    pub fn new(permits: u32) -> Self {
        let s = Self::default();
        s.count.store(permits, Ordering::Relaxed);
        s
    }

    /// Free permits now.
    pub fn value(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Take a permit if one is free.
    pub fn try_acquire(&self) -> bool {
        let mut c = self.count.load(Ordering::Relaxed);
        while c > 0 {
            // SYNC: Acquire, paired with the Release increment in `release`.
            match self
                .count
                .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Spin per `spin`, then sleep on the wake word until a permit is taken (`true`)
    /// or `deadline` passes (`false`).
    pub fn acquire(&self, spin: SpinPolicy, deadline: Deadline) -> bool {
        // The re-check after announcing looks for a permit without taking it: the next
        // attempt takes it.
        self.wake.wait_for(
            spin,
            deadline,
            || self.try_acquire(),
            || self.count.load(Ordering::Acquire) > 0,
        )
    }

    /// Return a permit, then wake the sleepers if any is announced (they race for it;
    /// those that lose sleep again).
    pub fn release(&self) {
        // SYNC: Release, paired with the Acquire CAS in `try_acquire`; then the wake
        // word's fence (WakeWord::notify): a syscall only if someone sleeps.
        self.count.fetch_add(1, Ordering::Release);
        self.wake.notify();
    }
}

/// A counting semaphore shared between processes — `multiprocessing.Semaphore`.
///
/// Permits are not tied to a process: if a process dies holding one, it is not returned
/// (as with Python's); use a [`Mutex`](crate::Mutex) where a dead holder must be noticed.
///
/// ```
/// let sem = shmkit_sync::Semaphore::anonymous(2)?;
/// sem.acquire();
/// assert!(sem.try_acquire());
/// assert!(!sem.try_acquire());
/// sem.release();
/// assert_eq!(sem.value(), 1);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Semaphore {
    shm: AtomicsSegment<SemState>,
    spin: SpinPolicy,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("name", &self.shm.segment().name())
            .field("value", &self.value())
            .finish()
    }
}

impl Semaphore {
    /// Create a named semaphore with `permits` permits.
    pub fn create(name: &str, permits: u32) -> Result<Semaphore> {
        Semaphore::init(
            AtomicsSegment::create(Some(name), Kind::Semaphore, 0o600)?,
            permits,
        )
    }

    /// Create an anonymous semaphore.
    pub fn anonymous(permits: u32) -> Result<Semaphore> {
        Semaphore::init(
            AtomicsSegment::create(None, Kind::Semaphore, 0o600)?,
            permits,
        )
    }

    fn init(shm: AtomicsSegment<SemState>, permits: u32) -> Result<Semaphore> {
        shm.state().count.store(permits, Ordering::Release);
        Ok(Semaphore {
            shm,
            spin: SpinPolicy::DEFAULT,
        })
    }

    /// Open a named semaphore.
    pub fn open(name: &str) -> Result<Semaphore> {
        Ok(Semaphore {
            shm: AtomicsSegment::open(name, Kind::Semaphore)?,
            spin: SpinPolicy::DEFAULT,
        })
    }

    fn st(&self) -> &SemState {
        self.shm.state()
    }

    /// Take a permit if one is free.
    pub fn try_acquire(&self) -> bool {
        self.st().try_acquire()
    }

    /// Take a permit, waiting as long as it takes.
    pub fn acquire(&self) {
        // Without a deadline the only error is a timeout, which cannot happen.
        let _ = self.acquire_deadline(None);
    }

    /// Take a permit, or `Err(Timeout)` after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_deadline(Some(timeout))
    }

    /// Take a permit, waiting at most `timeout` (`None`: forever). The clock (for the
    /// deadline and the time waited) is read only if no permit is free.
    fn acquire_deadline(&self, timeout: Option<Duration>) -> Result<()> {
        if self.st().try_acquire() {
            return Ok(());
        }
        let start = std::time::Instant::now();
        let deadline = Deadline::after(timeout);
        if self.st().acquire(self.spin, deadline) {
            return Ok(());
        }
        Err(Error::Timeout {
            name: self.shm.segment().name().to_owned(),
            waited: start.elapsed(),
        })
    }

    /// Return a permit, waking the waiters if any sleeps (they race for it; those that
    /// lose sleep again).
    pub fn release(&self) {
        self.st().release();
    }

    /// Free permits now (Python's `get_value()`).
    pub fn value(&self) -> u32 {
        self.st().value()
    }

    /// The words an async waiter uses (feature `internals`): the permit count and the
    /// wake word `release` notifies (announce, re-check the count, then wait on its
    /// sequence).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn wait_words(&self) -> (&AtomicU32, &WakeWord) {
        let st = self.st();
        (&st.count, &st.wake)
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Semaphore> {
        Handle::new(self.shm.segment().handle())
    }
}

impl Open for Semaphore {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Ok(Semaphore {
            shm: AtomicsSegment::wrap(seg.open()?)?,
            spin: SpinPolicy::DEFAULT,
        })
    }
}
