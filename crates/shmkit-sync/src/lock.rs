//! The robust lock shared by `Mutex`, `RLock`, `Value`, `Array` and `Dict`: a lock word
//! whose owner is a (process slot, generation) token, plus the table of generations.
//!
//! ## The lock word (32 bits)
//!
//! | bits | meaning |
//! |---|---|
//! | 31 | `WAITERS`: someone may be sleeping on the word; unlock must wake one |
//! | 30..10 | owner's generation (1..2^21), 0 when unlocked |
//! | 9..0 | owner's process slot (0..1024) |
//!
//! `0` is unlocked. A process registers by claiming a *liveness slot* of the segment — an
//! OFD lock the kernel releases when the process dies — and bumping that slot's
//! generation in the table. The owner is dead when its slot is no longer held, or when
//! its slot's generation moved on (a new process claimed the slot after the owner died).
//! A pid is never consulted.
//!
//! Uncontended lock is one CAS `0 -> token`; unlock is one swap to 0 and a futex wake
//! only if `WAITERS` was set: no syscall without contention.

use std::marker::PhantomData;
use std::time::Duration;

use shmkit_segment::{Kind, LivenessGuard, Segment, SegmentHandle, TypeFingerprint};

use crate::futex::{self, Deadline, SpinPolicy, WaitOutcome};
use crate::primitive::{AtomicU32, Ordering};
use crate::{Error, Result};

/// shmkit's one limit on processes: the process slots of a lock (and its generation
/// table's entries), and so the most workers of a `shmkit_pool::Pool`, all of which can
/// share one lock.
pub const MAX_PROCESSES: u32 = 1024;
pub(crate) const SLOT_BITS: u32 = 10;
pub(crate) const GEN_MASK: u32 = (1 << 21) - 1;
/// Lock-word bit: someone may sleep on the word.
pub const WAITERS: u32 = 1 << 31;
pub(crate) const TOKEN_MASK: u32 = !WAITERS;
/// How long a waiter sleeps before it checks whether the owner is still alive: the bound
/// on how long a dead owner can block the others.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(10);

/// The lock's shared state, at offset 0 of its segment's payload.
#[repr(C)]
pub(crate) struct LockState {
    pub word: AtomicU32,
    /// 1 from a recovery after a dead owner until someone calls `mark_consistent`.
    pub inconsistent: AtomicU32,
    /// How many times the lock was taken over from a dead owner.
    pub recoveries: AtomicU32,
    /// RLock: the kernel thread id of the owning thread.
    pub owner_thread: AtomicU32,
    /// RLock: recursion depth.
    pub depth: AtomicU32,
    /// The token of the last taker that recorded its pid below (for `shmkit inspect`;
    /// equal to the word's token while that taker holds the lock).
    pub holder_token: AtomicU32,
    /// The pid of that taker: informational only, never used to decide liveness.
    pub holder_pid: AtomicU32,
    _reserved: [AtomicU32; 9],
    /// Generation of each process slot, bumped by each process that claims the slot.
    pub gens: [AtomicU32; MAX_PROCESSES as usize],
}

// (loom's atomics are bigger and never placed in shared memory)
#[cfg(not(shmkit_loom))]
const _: () = assert!(size_of::<LockState>() == 64 + 4 * MAX_PROCESSES as usize);
#[cfg(not(shmkit_loom))]
const _: () = assert!(align_of::<LockState>() == 4);

/// Where the protected data starts in the payload (128-byte aligned).
pub(crate) const DATA_OFFSET: usize = size_of::<LockState>().next_multiple_of(128);

pub(crate) fn token(slot: u32, generation: u32) -> u32 {
    ((generation & GEN_MASK) << SLOT_BITS) | slot
}

pub(crate) fn token_slot(token: u32) -> u32 {
    token & ((1 << SLOT_BITS) - 1)
}

pub(crate) fn token_gen(token: u32) -> u32 {
    (token & TOKEN_MASK) >> SLOT_BITS
}

/// How a lock was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// From a live owner's release (or free).
    Clean,
    /// Taken over from a dead owner.
    OwnerDied,
}

/// The non-blocking fast path: `0 -> token`.
#[inline]
pub fn try_acquire(word: &AtomicU32, token: u32) -> bool {
    // SYNC: Acquire, paired with the Release swap in `release`: the new owner sees every
    // write the previous owner made under the lock.
    word.compare_exchange(0, token, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
}

/// Take the lock, spinning per `spin`, then sleeping on the word in bounded slices and
/// asking `owner_dead(token)` after each slice that timed out. `None` if `deadline`
/// passed first.
pub fn acquire(
    word: &AtomicU32,
    token: u32,
    spin: SpinPolicy,
    deadline: Deadline,
    mut owner_dead: impl FnMut(u32) -> bool,
) -> Option<Acquired> {
    if try_acquire(word, token) {
        return Some(Acquired::Clean);
    }
    if spin.spin_until(|| word.load(Ordering::Relaxed) == 0 && try_acquire(word, token)) {
        return Some(Acquired::Clean);
    }
    loop {
        let cur = word.load(Ordering::Relaxed);
        if cur == 0 {
            // Others may be asleep: take it in the contended state so our unlock wakes one.
            if word
                .compare_exchange(0, token | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Some(Acquired::Clean);
            }
            continue;
        }
        if cur & WAITERS == 0
            && word
                .compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        if deadline.expired() {
            return None;
        }
        let outcome = futex::wait(word, cur | WAITERS, Some(deadline.slice(LIVENESS_SLICE)));
        if outcome == WaitOutcome::TimedOut {
            let owner = cur & TOKEN_MASK;
            let now = word.load(Ordering::Relaxed);
            if now & TOKEN_MASK == owner && owner_dead(owner) {
                // SYNC: Acquire, as in `try_acquire`: whatever the dead owner wrote is
                // visible to us (its data is reachable for repair).
                if word
                    .compare_exchange(now, token | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Some(Acquired::OwnerDied);
                }
            }
        }
    }
}

/// Release the lock; wakes one sleeper if any may sleep.
#[inline]
pub fn release(word: &AtomicU32) {
    // SYNC: Release, paired with the Acquire CAS in `try_acquire`/`acquire`.
    let prev = word.swap(0, Ordering::Release);
    if prev & WAITERS != 0 {
        futex::wake(word, 1);
    }
}

/// A process's registration with one lock segment: the segment, the held liveness slot,
/// and the owner token made of slot and generation.
pub(crate) struct RobustLock {
    seg: Segment,
    _slot: LivenessGuard,
    token: u32,
    /// This process's pid, recorded next to the lock word when taking it.
    pid: u32,
    pub(crate) spin: SpinPolicy,
}

impl RobustLock {
    /// Create a lock segment whose data region holds `data_len` bytes.
    pub(crate) fn create(
        name: Option<&str>,
        kind: Kind,
        fingerprint: TypeFingerprint,
        data_len: usize,
        mode: u32,
    ) -> Result<RobustLock> {
        let b = Segment::builder(name.unwrap_or("anonymous"))
            .size(DATA_OFFSET + data_len)
            .kind(kind)
            .fingerprint(fingerprint)
            .mode(mode);
        let seg = match name {
            Some(_) => b.create()?,
            None => b.anonymous()?,
        };
        RobustLock::register(seg)
    }

    /// Open a lock segment by name.
    pub(crate) fn open(name: &str, kind: Kind, fingerprint: TypeFingerprint) -> Result<RobustLock> {
        let seg = Segment::builder(name)
            .kind(kind)
            .fingerprint(fingerprint)
            .open()?;
        RobustLock::register(seg)
    }

    pub(crate) fn open_handle(handle: &SegmentHandle) -> Result<RobustLock> {
        RobustLock::register(handle.open()?)
    }

    fn register(seg: Segment) -> Result<RobustLock> {
        if seg.len() < DATA_OFFSET {
            return Err(Error::Corrupted {
                name: seg.name().to_owned(),
                what: format!(
                    "{} payload bytes, a lock needs at least {DATA_OFFSET}",
                    seg.len()
                ),
            });
        }
        let slot = seg
            .claim_liveness_slot(0..MAX_PROCESSES)
            .map_err(|e| match e {
                shmkit_segment::Error::SlotBusy { .. } => Error::TooManyProcesses {
                    name: seg.name().to_owned(),
                    slots: MAX_PROCESSES,
                },
                other => Error::Segment(other),
            })?;
        let s = slot.slot();
        let mut lock = RobustLock {
            seg,
            token: 0,
            _slot: slot,
            pid: std::process::id(),
            spin: SpinPolicy::DEFAULT,
        };
        // The slot is ours now (kernel-arbitrated); moving its generation on marks any
        // earlier holder of the slot — necessarily dead — as not the owner any more.
        let gen_slot = &lock.state().gens[s as usize];
        let mut generation = gen_slot.fetch_add(1, Ordering::AcqRel).wrapping_add(1) & GEN_MASK;
        if generation == 0 {
            generation = gen_slot.fetch_add(1, Ordering::AcqRel).wrapping_add(1) & GEN_MASK;
        }
        lock.token = token(s, generation);
        Ok(lock)
    }

    pub(crate) fn name(&self) -> &str {
        self.seg.name()
    }

    pub(crate) fn token(&self) -> u32 {
        self.token
    }

    pub(crate) fn state(&self) -> &LockState {
        // SAFETY: `register` checked the payload holds at least DATA_OFFSET >=
        // size_of::<LockState>() bytes; the payload is 128-aligned; LockState is atomics
        // only, valid for any bit pattern; the reference borrows `self`, which owns the
        // mapping.
        unsafe { &*self.seg.as_ptr().cast::<LockState>() }
    }

    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: DATA_OFFSET <= payload length (checked in `register`).
        unsafe { self.seg.as_ptr().add(DATA_OFFSET) }
    }

    pub(crate) fn data_len(&self) -> usize {
        self.seg.len() - DATA_OFFSET
    }

    /// Whether the process behind `owner` is gone.
    pub(crate) fn owner_dead(&self, owner: u32) -> bool {
        let slot = token_slot(owner);
        if slot >= MAX_PROCESSES {
            return true; // not a token any process could hold
        }
        let moved_on =
            self.state().gens[slot as usize].load(Ordering::Acquire) & GEN_MASK != token_gen(owner);
        // An error asking the kernel counts as alive: never steal a lock on a guess.
        moved_on || !self.seg.is_alive(slot).unwrap_or(true)
    }

    /// Take the lock; `Ok(true)` if the data may be inconsistent (a dead owner).
    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<bool> {
        // The uncontended path: one CAS, no clock read, no syscall.
        if let Some(inconsistent) = self.try_lock() {
            return Ok(inconsistent);
        }
        self.lock_contended(deadline)
    }

    #[cold]
    fn lock_contended(&self, deadline: Deadline) -> Result<bool> {
        let start = std::time::Instant::now();
        let st = self.state();
        match acquire(&st.word, self.token, self.spin, deadline, |o| {
            self.owner_dead(o)
        }) {
            None => Err(Error::Timeout {
                name: self.name().to_owned(),
                waited: start.elapsed(),
            }),
            Some(Acquired::OwnerDied) => {
                self.note_holder(st);
                st.recoveries.fetch_add(1, Ordering::Relaxed);
                st.inconsistent.store(1, Ordering::Relaxed);
                Ok(true)
            }
            Some(Acquired::Clean) => {
                self.note_holder(st);
                Ok(st.inconsistent.load(Ordering::Relaxed) != 0)
            }
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> Option<bool> {
        let st = self.state();
        try_acquire(&st.word, self.token).then(|| {
            self.note_holder(st);
            st.inconsistent.load(Ordering::Relaxed) != 0
        })
    }

    /// Record who holds the lock, for `shmkit inspect` (a dead holder leaves no other
    /// trace of its pid). Two stores to the line the CAS just took: no extra miss.
    #[inline]
    fn note_holder(&self, st: &LockState) {
        st.holder_pid.store(self.pid, Ordering::Relaxed);
        st.holder_token.store(self.token, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn unlock(&self) {
        release(&self.state().word);
    }

    pub(crate) fn mark_consistent(&self) {
        self.state().inconsistent.store(0, Ordering::Relaxed);
    }

    pub(crate) fn handle(&self) -> SegmentHandle {
        self.seg.handle()
    }
}

/// A serializable reference to a shmkit-sync primitive: pass it to a child process (for
/// example as a `shmkit_process::spawn` argument) and [`open`](Handle::open) it there.
///
/// ```
/// use shmkit_sync::{Handle, Value};
/// let v = Value::anonymous(7u32)?;
/// let h: Handle<Value<u32>> = v.handle();      // what travels to the child
/// let bytes = postcard::to_allocvec(&h).unwrap();
/// let in_child: Handle<Value<u32>> = postcard::from_bytes(&bytes).unwrap();
/// assert_eq!(in_child.open()?.get()?, 7);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Handle<P> {
    pub(crate) seg: SegmentHandle,
    #[serde(skip)]
    pub(crate) _p: PhantomData<fn() -> P>,
}

impl<P> Clone for Handle<P> {
    fn clone(&self) -> Self {
        Handle {
            seg: self.seg.clone(),
            _p: PhantomData,
        }
    }
}

impl<P> std::fmt::Debug for Handle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Handle").field(&self.seg.name()).finish()
    }
}

impl<P: crate::Open> Handle<P> {
    /// Open the primitive this handle refers to (in this process: a new registration).
    pub fn open(&self) -> Result<P> {
        P::open_handle(&self.seg)
    }
}

impl<P> Handle<P> {
    pub(crate) fn new(seg: SegmentHandle) -> Self {
        Handle {
            seg,
            _p: PhantomData,
        }
    }
}
