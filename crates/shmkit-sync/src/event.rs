//! `Event` — Python's `multiprocessing.Event`.

use std::time::Duration;

use shmkit_segment::{Kind, SegmentHandle};

use crate::futex::{Deadline, SpinPolicy};
use crate::lock::Handle;
use crate::primitive::{AtomicU32, Ordering};
use crate::small::AtomicsSegment;
use crate::wake::WakeWord;
use crate::{Open, Result};

/// The payload of an `Event` segment (docs/sync.md), 12 bytes, and the event's whole
/// protocol: [`Event`] runs it on a mapped segment, `tests/loom_event.rs` on the heap
/// (public as `raw::EventState` with the feature `internals`, not covered by semver).
#[repr(C)]
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
pub struct EventState {
    /// 0 clear, 1 set.
    flag: AtomicU32,
    /// Waiters sleep here until `set` publishes the flag (the one wake-up protocol).
    wake: WakeWord,
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(size_of::<EventState>() == 12 && align_of::<EventState>() == 4);

#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
impl EventState {
    /// A clear event (for a heap model; in a segment the zeroed bytes are the same).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire) != 0
    }

    /// Set the flag, then wake the sleepers if any is announced.
    pub fn set(&self) {
        // SYNC: Release, paired with the waiters' Acquire loads of the flag; then the
        // wake word's fence (WakeWord::notify): a syscall only if someone sleeps.
        self.flag.store(1, Ordering::Release);
        self.wake.notify();
    }

    /// Clear the flag.
    pub fn clear(&self) {
        self.flag.store(0, Ordering::SeqCst);
    }

    /// Spin per `spin`, then sleep on the wake word until the flag is set or `deadline`
    /// passes; whether it is set.
    pub fn wait(&self, spin: SpinPolicy, deadline: Deadline) -> bool {
        self.wake
            .wait_for(spin, deadline, || self.is_set(), || self.is_set())
    }
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
        self.st().is_set()
    }

    /// Set the flag and wake every waiter.
    pub fn set(&self) {
        self.st().set();
    }

    /// Clear the flag.
    pub fn clear(&self) {
        self.st().clear();
    }

    /// Wait until the flag is set.
    pub fn wait(&self) {
        self.wait_deadline(None);
    }

    /// Wait until the flag is set or `timeout` passes; returns whether it is set
    /// (Python's `wait(timeout)` return value).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline(Some(timeout))
    }

    /// Wait at most `timeout` (`None`: forever); the deadline (a clock read) only if the
    /// flag is not set already.
    fn wait_deadline(&self, timeout: Option<Duration>) -> bool {
        let st = self.st();
        st.is_set() || st.wait(self.spin, Deadline::after(timeout))
    }

    /// The words an async waiter uses (feature `internals`): the flag (set: nonzero)
    /// and the wake word `set` notifies (announce, re-check the flag, then wait on its
    /// sequence).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn wait_words(&self) -> (&AtomicU32, &WakeWord) {
        let st = self.st();
        (&st.flag, &st.wake)
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
