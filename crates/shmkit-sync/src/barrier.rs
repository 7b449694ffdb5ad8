//! `Barrier` — Python's `multiprocessing.Barrier`.

use std::sync::OnceLock;
use std::time::Duration;

use shmkit_segment::{Kind, LivenessGuard, SegmentHandle};

use crate::futex::Deadline;
use crate::lock::{Handle, LIVENESS_SLICE};
use crate::primitive::{AtomicU32, Ordering};
use crate::small::AtomicsSegment;
use crate::wake::WakeWord;
use crate::{Error, Open, Result};

const MAX_PARTICIPANTS: u32 = 1024;

/// One caller's arrival at a [`Barrier`] (what the async form holds between its polls;
/// public with the feature `internals`).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub, dead_code))]
pub struct Arrival {
    /// The caller's arrival index (what `wait` returns).
    pub index: u32,
    /// The round's generation when the caller arrived.
    pub generation: u32,
    /// Whether this arrival was the last of the round (nothing to wait for).
    pub tripped: bool,
}

/// The payload of a `Barrier` segment (docs/sync.md), 152 bytes.
#[repr(C)]
pub(crate) struct BarrierState {
    pub parties: AtomicU32,
    pub arrived: AtomicU32,
    /// Bumped when a round completes (or on reset).
    pub generation: AtomicU32,
    pub broken: AtomicU32,
    /// Waiters sleep here until `generation` or `broken` changes (the one wake-up
    /// protocol).
    pub wake: WakeWord,
    /// Bit `s` set: the participant holding liveness slot `s` has waited on this barrier
    /// and not left. Such a slot found free means that participant died.
    pub claimed: [AtomicU32; (MAX_PARTICIPANTS / 32) as usize],
}

#[cfg(not(shmkit_loom))]
const _: () = assert!(size_of::<BarrierState>() == 152 && align_of::<BarrierState>() == 4);

/// A reusable barrier for `parties` processes (or threads) — `multiprocessing.Barrier`.
/// `wait` returns once `parties` callers are waiting, with a distinct index
/// `0..parties` each (Python's `wait()` return value).
///
/// A barrier never hangs on a dead participant: a process that has waited on it before
/// and died is noticed by the others within ~10 ms, and `wait_timeout` running out
/// breaks it too — both make every waiter return [`Error::BrokenBarrier`], as Python's
/// `BrokenBarrierError`, until [`reset`](Self::reset).
///
/// ```
/// let b = shmkit_sync::Barrier::anonymous(1)?;
/// assert_eq!(b.wait()?, 0);   // one party: passes at once, and again (reusable)
/// assert_eq!(b.wait()?, 0);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Barrier {
    shm: AtomicsSegment<BarrierState>,
    slot: OnceLock<LivenessGuard>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("name", &self.shm.segment().name())
            .field("parties", &self.parties())
            .finish()
    }
}

impl Barrier {
    /// Create a named barrier for `parties` participants.
    pub fn create(name: &str, parties: u32) -> Result<Barrier> {
        Barrier::init(
            AtomicsSegment::create(Some(name), Kind::Barrier, 0o600)?,
            parties,
        )
    }

    /// Create an anonymous barrier.
    pub fn anonymous(parties: u32) -> Result<Barrier> {
        Barrier::init(AtomicsSegment::create(None, Kind::Barrier, 0o600)?, parties)
    }

    fn init(shm: AtomicsSegment<BarrierState>, parties: u32) -> Result<Barrier> {
        shm.state().parties.store(parties.max(1), Ordering::Release);
        Ok(Barrier {
            shm,
            slot: OnceLock::new(),
        })
    }

    /// Open a named barrier.
    pub fn open(name: &str) -> Result<Barrier> {
        Ok(Barrier {
            shm: AtomicsSegment::open(name, Kind::Barrier)?,
            slot: OnceLock::new(),
        })
    }

    /// Participants per round.
    pub fn parties(&self) -> u32 {
        self.shm.state().parties.load(Ordering::Acquire)
    }

    /// Participants waiting in the current round.
    pub fn n_waiting(&self) -> u32 {
        self.shm.state().arrived.load(Ordering::Acquire)
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.shm.state().broken.load(Ordering::Acquire) != 0
    }

    fn name(&self) -> String {
        self.shm.segment().name().to_owned()
    }

    fn broken(&self, why: String) -> Error {
        Error::BrokenBarrier {
            name: self.name(),
            why,
        }
    }

    fn register(&self) -> Result<()> {
        if self.slot.get().is_some() {
            return Ok(());
        }
        let guard = self
            .shm
            .segment()
            .claim_liveness_slot(0..MAX_PARTICIPANTS)
            .map_err(|_| Error::TooManyProcesses {
                name: self.name(),
                slots: MAX_PARTICIPANTS,
            })?;
        let s = guard.slot();
        self.shm.state().claimed[(s / 32) as usize].fetch_or(1 << (s % 32), Ordering::AcqRel);
        let _ = self.slot.set(guard);
        Ok(())
    }

    /// A participant that waited here before and whose process is gone.
    fn dead_participant(&self) -> Option<u32> {
        let st = self.shm.state();
        for (word_index, word) in st.claimed.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let s = word_index as u32 * 32 + bits.trailing_zeros();
                bits &= bits - 1;
                if !self.shm.segment().is_alive(s).unwrap_or(true) {
                    return Some(s);
                }
            }
        }
        None
    }

    /// Wait for the other parties; returns this caller's arrival index.
    pub fn wait(&self) -> Result<u32> {
        self.wait_deadline(Deadline::NEVER)
    }

    /// Wait at most `timeout`; running out breaks the barrier for everyone.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32> {
        self.wait_deadline(Deadline::after(Some(timeout)))
    }

    fn wait_deadline(&self, deadline: Deadline) -> Result<u32> {
        let a = self.arrive_now()?;
        if a.tripped {
            return Ok(a.index);
        }
        let st = self.shm.state();
        loop {
            if let Some(r) = self.departed_now(&a, false) {
                return r;
            }
            if deadline.expired() {
                let parties = st.parties.load(Ordering::Acquire).max(1);
                return Err(self.break_now(format!(
                    "timed out with {} of {parties} parties waiting",
                    st.arrived.load(Ordering::Relaxed)
                )));
            }
            let timed_out = st.wake.sleep(
                || self.round_moved(&a),
                Some(deadline.slice(LIVENESS_SLICE)),
            );
            if timed_out && let Some(r) = self.departed_now(&a, true) {
                return r;
            }
        }
    }

    /// Arrive at the barrier: the first half of [`wait`](Self::wait). The last party to
    /// arrive trips it (`tripped`); the others then wait for `departed`.
    fn arrive_now(&self) -> Result<Arrival> {
        self.register()?;
        let st = self.shm.state();
        let parties = st.parties.load(Ordering::Acquire).max(1);
        let generation = st.generation.load(Ordering::Acquire);
        if st.broken.load(Ordering::Acquire) != 0 {
            return Err(self.broken("broken earlier; call reset()".into()));
        }
        let index = st.arrived.fetch_add(1, Ordering::AcqRel);
        let tripped = index + 1 >= parties;
        if tripped {
            st.arrived.store(0, Ordering::Release);
            // SYNC: Release, paired with the Acquire loads of `generation` by waiters;
            // then the wake word's fence (WakeWord::notify).
            st.generation.fetch_add(1, Ordering::AcqRel);
            st.wake.notify();
        }
        Ok(Arrival {
            index,
            generation,
            tripped,
        })
    }

    /// Whether the round `a` arrived in is over or the barrier broke (what a sleeper
    /// re-checks after announcing itself).
    fn round_moved(&self, a: &Arrival) -> bool {
        let st = self.shm.state();
        st.generation.load(Ordering::Acquire) != a.generation
            || st.broken.load(Ordering::Acquire) != 0
    }

    /// After `arrive_now`: `Some` once the round is over (this caller's index) or the
    /// barrier broke; `None` while the others are still to come. `ask_kernel`: also
    /// check whether a participant died (syscalls: after a sleep nobody cut short).
    fn departed_now(&self, a: &Arrival, ask_kernel: bool) -> Option<Result<u32>> {
        let st = self.shm.state();
        if st.generation.load(Ordering::Acquire) != a.generation {
            return Some(Ok(a.index));
        }
        if st.broken.load(Ordering::Acquire) != 0 {
            return Some(Err(self.broken("another participant broke it".into())));
        }
        if ask_kernel && st.generation.load(Ordering::Acquire) == a.generation {
            let s = self.dead_participant()?;
            return Some(Err(
                self.break_now(format!("the participant in slot {s} died"))
            ));
        }
        None
    }

    /// The first half of `wait`, for the async form (feature `internals`): arrive; the
    /// last party trips the barrier (`tripped`), the others wait for
    /// [`departed`](Self::departed).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn arrive(&self) -> Result<Arrival> {
        self.arrive_now()
    }

    /// The second half of `wait`, for the async form (feature `internals`): `Some` once
    /// the round is over or the barrier broke; `ask_kernel` also checks for a dead
    /// participant (and breaks the barrier if one is).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn departed(&self, a: &Arrival, ask_kernel: bool) -> Option<Result<u32>> {
        self.departed_now(a, ask_kernel)
    }

    /// The wake word waiters sleep on (notified when a round completes, or on a break
    /// or reset), for the async form (feature `internals`): announce, re-check
    /// [`departed`](Self::departed), then wait on its sequence.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn wake_word(&self) -> &WakeWord {
        &self.shm.state().wake
    }

    /// Break the barrier for everyone, saying `why` (what a timed-out wait does; the
    /// async form does it when a waiting future is dropped). Feature `internals`.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn break_barrier(&self, why: String) {
        self.break_now(why);
    }

    fn break_now(&self, why: String) -> Error {
        let st = self.shm.state();
        st.broken.store(1, Ordering::Release);
        st.wake.notify();
        self.broken(why)
    }

    /// Make a broken barrier usable again (a new, empty round); dead participants are
    /// forgotten.
    pub fn reset(&self) {
        let st = self.shm.state();
        for (word_index, word) in st.claimed.iter().enumerate() {
            for bit in 0..32 {
                let s = word_index as u32 * 32 + bit;
                if word.load(Ordering::Relaxed) & (1 << bit) != 0
                    && !self.shm.segment().is_alive(s).unwrap_or(true)
                {
                    word.fetch_and(!(1 << bit), Ordering::AcqRel);
                }
            }
        }
        st.arrived.store(0, Ordering::Release);
        st.broken.store(0, Ordering::Release);
        st.generation.fetch_add(1, Ordering::AcqRel);
        st.wake.notify();
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Barrier> {
        Handle::new(self.shm.segment().handle())
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        // Leaving is not dying: clear our bit before the kernel lock goes.
        if let Some(guard) = self.slot.get() {
            let s = guard.slot();
            self.shm.state().claimed[(s / 32) as usize]
                .fetch_and(!(1 << (s % 32)), Ordering::AcqRel);
        }
    }
}

impl Open for Barrier {
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Ok(Barrier {
            shm: AtomicsSegment::wrap(seg.open()?)?,
            slot: OnceLock::new(),
        })
    }
}
