//! `Event` — Python's `multiprocessing.Event`.

use std::time::Duration;

use shmkit_segment::{Kind, SegmentHandle};

use crate::futex::{self, Deadline, SpinPolicy, WaitOutcome};
use crate::lock::Handle;
use crate::primitive::{AtomicU32, Ordering};
use crate::small::AtomicsSegment;
use crate::{Open, Result};

#[repr(C)]
pub(crate) struct EventState {
    /// 0 clear, 1 set. Waiters sleep on this word.
    pub flag: AtomicU32,
    /// Processes (threads) that may be asleep: `set` issues a wake only if non-zero.
    pub waiters: AtomicU32,
}

/// A flag that processes can wait for — `multiprocessing.Event`: `set`, `clear`,
/// `is_set`, `wait`, `wait_timeout`. One `set` releases every waiter.
///
/// `set` costs a syscall only when someone sleeps; a waiter spins briefly before it
/// sleeps on the flag's futex.
///
/// ```
/// let ev = shmkit_sync::Event::anonymous()?;
/// assert!(!ev.is_set());
/// assert!(!ev.wait_timeout(std::time::Duration::from_millis(1)));
/// ev.set();
/// assert!(ev.wait_timeout(std::time::Duration::from_secs(1)));
/// ev.clear();
/// assert!(!ev.is_set());
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Event {
    shm: AtomicsSegment<EventState>,
    spin: SpinPolicy,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.shm.segment().name())
            .field("set", &self.is_set())
            .finish()
    }
}

impl Event {
    /// Create a named event, initially clear.
    pub fn create(name: &str) -> Result<Event> {
        Ok(Event::from(AtomicsSegment::create(
            Some(name),
            Kind::Event,
            0o600,
        )?))
    }

    /// Create an anonymous event (reach it from children through [`handle`](Self::handle)).
    pub fn anonymous() -> Result<Event> {
        Ok(Event::from(AtomicsSegment::create(
            None,
            Kind::Event,
            0o600,
        )?))
    }

    /// Open a named event.
    pub fn open(name: &str) -> Result<Event> {
        Ok(Event::from(AtomicsSegment::open(name, Kind::Event)?))
    }

    /// Set how long this handle's waits spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.spin = spin;
    }

    fn st(&self) -> &EventState {
        self.shm.state()
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.st().flag.load(Ordering::Acquire) != 0
    }

    /// Set the flag and wake every waiter.
    pub fn set(&self) {
        let st = self.st();
        // SYNC: the flag, then a read-modify-write of `waiters`; the waiter increments
        // `waiters` (RMW), then reads the flag. The two RMWs on `waiters` are ordered:
        // if ours comes first, the waiter's reads from ours (AcqRel) and then sees the
        // flag, so it does not sleep; if the waiter's comes first, we read its count and
        // wake it. RMWs (not plain SeqCst loads) make this hold in loom's model too, and
        // the kernel re-checks the flag before it sleeps.
        st.flag.swap(1, Ordering::AcqRel);
        if st.waiters.fetch_add(0, Ordering::AcqRel) != 0 {
            futex::wake_all(&st.flag);
        }
    }

    /// Clear the flag.
    pub fn clear(&self) {
        self.st().flag.store(0, Ordering::SeqCst);
    }

    /// Wait until the flag is set.
    pub fn wait(&self) {
        self.wait_deadline(Deadline::NEVER);
    }

    /// Wait until the flag is set or `timeout` passes; returns whether it is set
    /// (Python's `wait(timeout)` return value).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Deadline::after(Some(timeout)))
    }

    fn wait_deadline(&self, deadline: Deadline) -> bool {
        let st = self.st();
        if self
            .spin
            .spin_until(|| st.flag.load(Ordering::Acquire) != 0)
        {
            return true;
        }
        st.waiters.fetch_add(1, Ordering::AcqRel);
        let set = loop {
            if st.flag.load(Ordering::Acquire) != 0 {
                break true;
            }
            if deadline.expired() {
                break false;
            }
            if futex::wait(&st.flag, 0, deadline.remaining()) == WaitOutcome::TimedOut {
                break st.flag.load(Ordering::Acquire) != 0;
            }
        };
        st.waiters.fetch_sub(1, Ordering::AcqRel);
        set
    }

    /// The words an async waiter uses (feature `internals`): the flag (sleep on it
    /// while it is 0) and the waiter count (`set` wakes only if it is nonzero: hold it
    /// raised while registered).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn wait_words(&self) -> (&AtomicU32, &AtomicU32) {
        let st = self.st();
        (&st.flag, &st.waiters)
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Event> {
        Handle::new(self.shm.segment().handle())
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.shm.segment().name()
    }
}

impl From<AtomicsSegment<EventState>> for Event {
    fn from(shm: AtomicsSegment<EventState>) -> Self {
        Event {
            shm,
            spin: SpinPolicy::DEFAULT,
        }
    }
}

impl Open for Event {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Ok(Event::from(AtomicsSegment::wrap(seg.open()?)?))
    }
}
