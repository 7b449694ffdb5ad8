//! `Condvar` — Python's `multiprocessing.Condition`, paired with a [`Mutex`].

use std::time::Duration;

use bytemuck::Pod;
use shmkit_segment::{Kind, SegmentHandle};

use crate::futex::{self, Deadline};
use crate::lock::Handle;
use crate::mutex::MutexGuard;
use crate::primitive::{AtomicU32, Ordering};
use crate::small::AtomicsSegment;
use crate::{Open, Result};

#[repr(C)]
pub(crate) struct CondState {
    /// Bumped by every notify; waiters sleep while it still holds the value they saw.
    pub seq: AtomicU32,
    pub waiters: AtomicU32,
}

/// A condition variable shared between processes, used with a [`Mutex`](crate::Mutex)
/// guard: `wait` unlocks, sleeps until notified, and locks again. Like Python's
/// `Condition`, wake-ups may be spurious: wait in a loop that re-checks the condition.
///
/// ```
/// use shmkit_sync::{Condvar, Mutex};
/// let ready = Mutex::anonymous(false as u8)?;
/// let cv = Condvar::anonymous()?;
/// *ready.lock()? = 1;
/// cv.notify_all();
/// let mut g = ready.lock()?;
/// while *g == 0 {
///     g = cv.wait(g)?;
/// }
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Condvar {
    shm: AtomicsSegment<CondState>,
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condvar")
            .field("name", &self.shm.segment().name())
            .finish()
    }
}

impl Condvar {
    /// Create a named condition variable.
    pub fn create(name: &str) -> Result<Condvar> {
        Ok(Condvar {
            shm: AtomicsSegment::create(Some(name), Kind::Condvar, 0o600)?,
        })
    }

    /// Create an anonymous condition variable.
    pub fn anonymous() -> Result<Condvar> {
        Ok(Condvar {
            shm: AtomicsSegment::create(None, Kind::Condvar, 0o600)?,
        })
    }

    /// Open a named condition variable.
    pub fn open(name: &str) -> Result<Condvar> {
        Ok(Condvar {
            shm: AtomicsSegment::open(name, Kind::Condvar)?,
        })
    }

    /// Unlock `guard`'s mutex, sleep until notified (or spuriously woken), lock again.
    pub fn wait<'a, T: Pod>(&self, guard: MutexGuard<'a, T>) -> Result<MutexGuard<'a, T>> {
        Ok(self.wait_deadline(guard, Deadline::NEVER)?.0)
    }

    /// Like [`wait`](Self::wait) for at most `timeout`; the `bool` is `true` if the
    /// timeout passed (Python's `wait` returns `False` then).
    pub fn wait_timeout<'a, T: Pod>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> Result<(MutexGuard<'a, T>, bool)> {
        self.wait_deadline(guard, Deadline::after(Some(timeout)))
    }

    fn wait_deadline<'a, T: Pod>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Deadline,
    ) -> Result<(MutexGuard<'a, T>, bool)> {
        let st = self.shm.state();
        // Read the sequence while still holding the lock: a notify after our unlock
        // changes it, so the futex wait below returns at once instead of missing it.
        let seen = st.seq.load(Ordering::Acquire);
        st.waiters.fetch_add(1, Ordering::AcqRel);
        let mutex = MutexGuard::unlock_into_mutex(guard);
        let outcome = futex::wait(&st.seq, seen, deadline.remaining());
        st.waiters.fetch_sub(1, Ordering::AcqRel);
        let timed_out = outcome == futex::WaitOutcome::TimedOut;
        Ok((mutex.lock()?, timed_out))
    }

    /// Wake one waiter.
    pub fn notify_one(&self) {
        let st = self.shm.state();
        // SYNC: RMW on `seq`, then RMW on `waiters` (see Event::set for why RMWs).
        st.seq.fetch_add(1, Ordering::AcqRel);
        if st.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake(&st.seq, 1);
        }
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        let st = self.shm.state();
        st.seq.fetch_add(1, Ordering::AcqRel);
        if st.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake_all(&st.seq);
        }
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Condvar> {
        Handle::new(self.shm.segment().handle())
    }
}

impl Open for Condvar {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Ok(Condvar {
            shm: AtomicsSegment::wrap(seg.open()?)?,
        })
    }
}
