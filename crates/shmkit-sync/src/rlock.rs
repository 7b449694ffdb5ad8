//! `RLock` — Python's `multiprocessing.RLock`.

use std::time::Duration;

use shmkit_segment::{Kind, SegmentHandle, TypeFingerprint};

use crate::futex::Deadline;
use crate::lock::{Handle, RobustLock, TOKEN_MASK};
use crate::primitive::Ordering;
use crate::{Error, Open, Result};

fn thread_id() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// A re-entrant lock: the thread that holds it may take it again; it is released when
/// every acquisition has been released. Robust like [`Mutex`](crate::Mutex): a dead
/// holder's lock passes to the next acquirer with `owner_died()` set.
///
/// ```
/// let lock = shmkit_sync::RLock::anonymous()?;
/// let outer = lock.acquire()?;
/// let inner = lock.acquire()?;       // same thread: no deadlock
/// assert_eq!(lock.depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(lock.depth(), 0);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct RLock {
    lock: RobustLock,
}

impl std::fmt::Debug for RLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RLock")
            .field("name", &self.lock.name())
            .finish()
    }
}

impl RLock {
    /// Create a named re-entrant lock.
    pub fn create(name: &str) -> Result<RLock> {
        Ok(RLock {
            lock: RobustLock::create(Some(name), Kind::RLock, TypeFingerprint::NONE, 0, 0o600)?,
        })
    }

    /// Create an anonymous re-entrant lock.
    pub fn anonymous() -> Result<RLock> {
        Ok(RLock {
            lock: RobustLock::create(None, Kind::RLock, TypeFingerprint::NONE, 0, 0o600)?,
        })
    }

    /// Open a named re-entrant lock.
    pub fn open(name: &str) -> Result<RLock> {
        Ok(RLock {
            lock: RobustLock::open(name, Kind::RLock, TypeFingerprint::NONE)?,
        })
    }

    fn held_by_me(&self) -> bool {
        let st = self.lock.state();
        st.word.load(Ordering::Acquire) & TOKEN_MASK == self.lock.token()
            && st.owner_thread.load(Ordering::Relaxed) == thread_id()
    }

    /// Acquire (again, if this thread holds it), waiting as long as it takes.
    pub fn acquire(&self) -> Result<RLockGuard<'_>> {
        self.acquire_deadline(None)
    }

    /// Acquire, or `Err(Timeout)` after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>> {
        self.acquire_deadline(Some(timeout))
    }

    /// Acquire, waiting at most `timeout` (`None`: forever); the deadline (a clock read)
    /// only if the lock is held by another.
    fn acquire_deadline(&self, timeout: Option<Duration>) -> Result<RLockGuard<'_>> {
        let st = self.lock.state();
        if self.held_by_me() {
            st.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(RLockGuard {
                lock: self,
                owner_died: false,
            });
        }
        let owner_died = match self.lock.try_lock() {
            Some(died) => died,
            None => self.lock.lock(Deadline::after(timeout))?,
        };
        st.owner_thread.store(thread_id(), Ordering::Relaxed);
        st.depth.store(1, Ordering::Relaxed);
        Ok(RLockGuard {
            lock: self,
            owner_died,
        })
    }

    /// Acquisitions held by the owning thread (0 when free).
    pub fn depth(&self) -> u32 {
        let st = self.lock.state();
        if st.word.load(Ordering::Acquire) == 0 {
            0
        } else {
            st.depth.load(Ordering::Relaxed)
        }
    }

    fn release(&self) -> Result<()> {
        if !self.held_by_me() {
            return Err(Error::NotOwner {
                name: self.lock.name().to_owned(),
                what: "release of an RLock this thread does not hold",
            });
        }
        let st = self.lock.state();
        if st.depth.fetch_sub(1, Ordering::Relaxed) == 1 {
            st.owner_thread.store(0, Ordering::Relaxed);
            self.lock.unlock();
        }
        Ok(())
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<RLock> {
        Handle::new(self.lock.handle())
    }
}

impl Open for RLock {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Ok(RLock {
            lock: RobustLock::open_handle(seg)?,
        })
    }
}

/// One acquisition of an [`RLock`]; released on drop.
#[derive(Debug)]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    owner_died: bool,
}

impl RLockGuard<'_> {
    /// Whether a previous holder died holding the lock (see [`Mutex`](crate::Mutex)).
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declare whatever the lock protects repaired.
    pub fn mark_consistent(&mut self) {
        self.lock.lock.mark_consistent();
        self.owner_died = false;
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // The guard proves this thread holds the lock, so release cannot fail.
        let _ = self.lock.release();
    }
}
