//! `Semaphore` — Python's `multiprocessing.Semaphore`.

use std::time::Duration;

use shmkit_segment::{Kind, SegmentHandle};

use crate::futex::{self, Deadline, SpinPolicy};
use crate::lock::Handle;
use crate::primitive::{AtomicU32, Ordering};
use crate::small::AtomicsSegment;
use crate::{Error, Open, Result};

#[repr(C)]
pub(crate) struct SemState {
    /// Available permits; waiters sleep on this word while it is 0.
    pub count: AtomicU32,
    pub waiters: AtomicU32,
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
        let count = &self.st().count;
        let mut c = count.load(Ordering::Relaxed);
        while c > 0 {
            // SYNC: Acquire, paired with the Release increment in `release`.
            match count.compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Take a permit, waiting as long as it takes.
    pub fn acquire(&self) {
        // Without a deadline the only error is a timeout, which cannot happen.
        let _ = self.acquire_deadline(Deadline::NEVER);
    }

    /// Take a permit, or `Err(Timeout)` after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_deadline(Deadline::after(Some(timeout)))
    }

    fn acquire_deadline(&self, deadline: Deadline) -> Result<()> {
        if self.spin.spin_until(|| self.try_acquire()) {
            return Ok(());
        }
        let start = std::time::Instant::now();
        let st = self.st();
        st.waiters.fetch_add(1, Ordering::AcqRel);
        let got = loop {
            if self.try_acquire() {
                break true;
            }
            if deadline.expired() {
                break false;
            }
            // SYNC: as in Event: our RMW on `waiters` and `release`'s RMW on it are
            // ordered; either it reads our count and wakes us, or our increment reads
            // from its RMW, after which the CAS above (or the kernel's check of `count`)
            // sees the returned permit.
            futex::wait(&st.count, 0, deadline.remaining());
        };
        st.waiters.fetch_sub(1, Ordering::AcqRel);
        if got {
            Ok(())
        } else {
            Err(Error::Timeout {
                name: self.shm.segment().name().to_owned(),
                waited: start.elapsed(),
            })
        }
    }

    /// Return a permit, waking one waiter if any sleeps.
    pub fn release(&self) {
        let st = self.st();
        st.count.fetch_add(1, Ordering::AcqRel);
        if st.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake(&st.count, 1);
        }
    }

    /// Free permits now (Python's `get_value()`).
    pub fn value(&self) -> u32 {
        self.st().count.load(Ordering::Relaxed)
    }

    /// The words an async waiter uses (feature `internals`): the count (sleep on it
    /// while it is 0) and the waiter count (`release` wakes only if it is nonzero: hold
    /// it raised while registered).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn wait_words(&self) -> (&AtomicU32, &AtomicU32) {
        let st = self.st();
        (&st.count, &st.waiters)
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
