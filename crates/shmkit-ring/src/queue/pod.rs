//! [`PodQueue`]: the `Pod` fast path of [`Queue`](crate::Queue). Fixed-size items in
//! the lock-free MPMC slot queue of [`raw::mpmc`](crate::raw::mpmc), whose consumers skip
//! a slot claimed by a producer that died before publishing it (counted by
//! [`PodQueue::abandoned`]). No serialization, no claim locks.

use super::handle::{Flavor, Handle, handle_impls};
use crate::error::{Error, Result, TryRecvError, TrySendError};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::raw::RawError;
use crate::raw::mpmc::{self, Mpmc};
use crate::registry::{MAX_HANDLES, READY, REGISTRY_BYTES, Registry};
use crate::wait::{SLICE, WaitStrategy};
use crossbeam_utils::CachePadded;
use shmkit_segment::{Kind, Segment};
use shmkit_sync::futex::{Deadline, SpinPolicy};
use shmkit_sync::wake::WakeWord;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Offset of the MPMC header (docs/memory-layout-ring.md).
pub(crate) const MPMC_OFFSET: usize = REGISTRY_BYTES;
/// Offset of the producer table: one entry per handle slot.
pub(crate) const TABLE_OFFSET: usize = MPMC_OFFSET + mpmc::HEADER_BYTES;
/// Offset of the slot sequences, followed by the payload.
pub(crate) const SEQS_OFFSET: usize = TABLE_OFFSET + MAX_HANDLES as usize * mpmc::ENTRY_BYTES;

/// A multi-producer multi-consumer queue of fixed-size `Pod` items: the fast path of
/// [`Queue`](crate::Queue) that skips serialization (lock-free MPMC slots).
///
/// ```
/// let q = shmkit_ring::PodQueue::<u64>::create(&format!("shmkit-doc-pq-{}", std::process::id()), 1024)?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
#[derive(Debug)]
pub struct PodQueue<T> {
    h: Handle<Mpmc>,
    /// Copied out of `h` for the hot path.
    q: Mpmc,
    _t: PhantomData<fn(T) -> T>,
}

/// How long a consumer waits on a claimed-but-unpublished head slot before it asks
/// whether the claimant is dead.
const STALL: Duration = Duration::from_millis(1);

/// Makes a [`PodQueue`]; see [`PodQueue::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `create`"]
pub struct PodQueueBuilder<T> {
    name: Option<String>,
    capacity: usize,
    strategy: WaitStrategy,
    _t: PhantomData<fn(T) -> T>,
}

impl<T: bytemuck::Pod> PodQueueBuilder<T> {
    /// A name in `/dev/shm`, so other programs can [`PodQueue::open`] it (default:
    /// anonymous, shared with children by passing a handle).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// How producers and consumers wait for each other (recorded in the header).
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Create the queue; this handle is its first.
    pub fn create(self) -> Result<PodQueue<T>> {
        PodQueue::create_in(self.name.as_deref(), self.capacity, self.strategy)
    }
}

impl Flavor for Mpmc {
    fn attach(seg: &Segment) -> Result<Self> {
        // The item size is the segment's type fingerprint (checked at open).
        let item = seg.fingerprint().size() as usize;
        pod_mpmc(seg, item)
    }

    fn accept(&self, slot: u32) -> bool {
        // A table entry whose dead owner's intent may still be needed is not reused.
        self.claim_entry(slot)
    }

    fn data_wake(&self) -> &WakeWord {
        &self.header().meta.data_wake
    }

    fn space_wake(&self) -> &WakeWord {
        &self.header().meta.space_wake
    }

    fn strategy_word(&self) -> &AtomicU32 {
        &self.header().meta.wait_strategy
    }

    #[cfg(feature = "internals")]
    fn has_data(&self) -> bool {
        Mpmc::has_data(self)
    }

    #[cfg(feature = "internals")]
    fn words(self, data: bool) -> crate::wait_side::Words<'static> {
        crate::wait_side::Words::Pod(self, data)
    }
}

/// The slots a PodQueue segment of `item`-byte items holds, implied by the mapping's
/// size (the one place that says so; `inspect` asks here too).
pub(crate) fn pod_capacity(seg: &Segment, item: usize) -> Result<u64> {
    let stride = mpmc::stride(item) as u64;
    let rest = seg.len().saturating_sub(SEQS_OFFSET) as u64;
    let cap = rest / (8 + stride);
    // Invariant restored: the capacity implied by the mapping's own size is a valid
    // power of two and accounts for every byte (so the payload holds at least
    // SEQS_OFFSET bytes, and every offset of the layout lies inside the mapping).
    if seg.len() < SEQS_OFFSET || !mpmc::valid_capacity(cap) || cap * (8 + stride) != rest {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!(
                "payload of {} bytes is not a PodQueue of {item}-byte items",
                seg.len()
            ),
        });
    }
    Ok(cap)
}

fn pod_mpmc(seg: &Segment, item: usize) -> Result<Mpmc> {
    let cap = pod_capacity(seg, item)?;
    let at = |offset: usize| {
        assert!(offset < seg.len());
        // SAFETY: `offset` is inside the mapping's payload (asserted).
        unsafe { seg.as_ptr().add(offset) }
    };
    let (header, table) = (at(MPMC_OFFSET), at(TABLE_OFFSET));
    let (seqs, payload) = (at(SEQS_OFFSET), at(SEQS_OFFSET + cap as usize * 8));
    // SAFETY: header, table, sequences and payload lie at the offsets above, inside the
    // mapping (SEQS_OFFSET + cap * (8 + stride) == len, checked); all 8-aligned (the
    // payload base is 128-aligned and every offset a multiple of 8). The segment is
    // kept alive (an `Arc` in `Inner`) as long as the `Mpmc` is used.
    let q = unsafe {
        Mpmc::new(
            header.cast(),
            table.cast::<CachePadded<AtomicU64>>(),
            MAX_HANDLES,
            seqs.cast(),
            payload,
            cap,
            item,
        )
    };
    let m = &q.header().meta;
    let (c, i) = (
        m.capacity.load(Ordering::Acquire),
        m.item_size.load(Ordering::Acquire),
    );
    if (c != 0 && c != cap) || (i != 0 && i != item as u64) {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!("header says {c} slots of {i} bytes, expected {cap} of {item}"),
        });
    }
    Ok(q)
}

impl<T: bytemuck::Pod> PodQueue<T> {
    /// Create a named queue of `capacity` items (a power of two, at least 2).
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_in(Some(name), capacity, WaitStrategy::Blocking)
    }

    /// Create an anonymous queue, shared with children by passing a handle.
    pub fn anonymous(capacity: usize) -> Result<Self> {
        Self::create_in(None, capacity, WaitStrategy::Blocking)
    }

    /// A builder for a queue of `capacity` items: a name (default: anonymous) and a
    /// [`WaitStrategy`] (default: [`WaitStrategy::Blocking`]).
    ///
    /// ```
    /// use shmkit_ring::{PodQueue, WaitStrategy};
    /// let q = PodQueue::<u64>::builder(1024).wait(WaitStrategy::BusyPoll).create()?;
    /// q.put(&7)?;
    /// assert_eq!(q.get()?, 7);
    /// assert_eq!(q.wait_strategy(), WaitStrategy::BusyPoll);
    /// # Ok::<(), shmkit_ring::Error>(())
    /// ```
    pub fn builder(capacity: usize) -> PodQueueBuilder<T> {
        PodQueueBuilder {
            name: None,
            capacity,
            strategy: WaitStrategy::Blocking,
            _t: PhantomData,
        }
    }

    /// How this queue's producers and consumers wait (fixed at creation).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.h.strategy
    }

    fn create_in(name: Option<&str>, capacity: usize, strategy: WaitStrategy) -> Result<Self> {
        let cap = capacity as u64;
        if !mpmc::valid_capacity(cap) {
            return Err(Error::InvalidCapacity {
                capacity: cap,
                why: "a PodQueue's capacity must be a power of two >= 2",
            });
        }
        let stride = mpmc::stride(core::mem::size_of::<T>());
        let size = SEQS_OFFSET + capacity * (8 + stride);
        let b = |n: &str| {
            Segment::builder(n)
                .size(size)
                .kind(Kind::MpmcQueue)
                .typed::<T>()
        };
        let seg = match name {
            Some(n) => b(n).create()?,
            None => b("anonymous").anonymous()?,
        };
        let q = pod_mpmc(&seg, core::mem::size_of::<T>())?;
        q.init_slots();
        let m = &q.header().meta;
        m.capacity.store(cap, Ordering::Relaxed);
        m.item_size
            .store(core::mem::size_of::<T>() as u64, Ordering::Relaxed);
        m.table_len.store(MAX_HANDLES, Ordering::Relaxed);
        m.wait_strategy.store(strategy.code(), Ordering::Relaxed);
        let reg = Registry::new(Arc::new(seg))?;
        // SYNC: Release, publishes the initialised sequences to openers (the Acquire in
        // `Registry::wait_ready`).
        reg.header().ready.store(READY, Ordering::Release);
        Self::from_handle(Handle::open(reg, None)?)
    }

    /// Open the queue `name` as a new handle (checks the item type).
    pub fn open(name: &str) -> Result<Self> {
        Self::from_handle(Handle::open_named::<T>(name, Kind::MpmcQueue)?)
    }

    /// Infallible; a `Result` as `Queue`'s (which checks its record format), so both
    /// share `handle_impls!`.
    fn from_handle(h: Handle<Mpmc>) -> Result<Self> {
        Ok(PodQueue {
            q: h.flavor,
            h,
            _t: PhantomData,
        })
    }

    fn name(&self) -> &str {
        self.h.name()
    }

    /// Put without waiting: [`TrySendError::Full`] if no slot is free now;
    /// [`TrySendError::Failed`] if this handle is closed or the queue corrupted. Like the
    /// `Queue`'s, a try never asks whether consumers are left, so it never returns
    /// [`TrySendError::Disconnected`] (the blocking [`put`](Self::put) does, before it
    /// would sleep). The item is the caller's `&T`, still in its hands.
    pub fn try_put(&self, item: &T) -> Result<(), TrySendError> {
        self.push(item).map_err(TrySendError::from_error)
    }

    /// Push if a slot is free now ([`Error::Full`] if not).
    fn push(&self, item: &T) -> Result<()> {
        self.h.before_put()?;
        let me = self.h.slot();
        self.q
            .try_push(Some(me), bytemuck::bytes_of(item))
            .map_err(|e| Error::from_raw(self.name(), e))?;
        self.h.strategy.notify(&self.q.header().meta.data_wake);
        Ok(())
    }

    /// Put, waiting at most `timeout` (`None`: forever). The deadline (a clock read) is
    /// only computed once the first attempt found no room.
    fn put_deadline(&self, item: &T, timeout: Option<Duration>) -> Result<()> {
        match self.push(item) {
            Err(Error::Full) => {}
            r => return r,
        }
        let dl = Deadline::after(timeout);
        loop {
            match self.push(item) {
                Err(Error::Full) => {}
                r => return r,
            }
            let q = self.q;
            if self
                .h
                .strategy
                .spin_before_park(self.h.spin)
                .spin_until(move || q.has_space())
            {
                continue;
            }
            if !self.h.reg.others_alive(self.h.slot()) {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            self.h.strategy.park(
                &q.header().meta.space_wake,
                move || q.has_space(),
                dl.slice(SLICE),
            );
        }
    }

    /// Put `item`, waiting while the queue is full.
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_deadline(item, None)
    }

    /// [`put`](Self::put), giving up after `timeout`.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_deadline(item, Some(timeout))
    }

    fn pop(&self) -> Result<Option<T>> {
        let mut v = T::zeroed();
        match self.q.try_pop(bytemuck::bytes_of_mut(&mut v)) {
            Ok(()) => {
                self.h.strategy.notify(&self.q.header().meta.space_wake);
                Ok(Some(v))
            }
            Err(RawError::Empty) => Ok(None),
            Err(e) => Err(Error::from_raw(self.name(), e)),
        }
    }

    /// Skip the head slot if its producer died before publishing it.
    fn unblock(&self) -> bool {
        let seg = &self.h.reg.seg;
        let skipped = self.q.try_unblock(|e| seg.is_alive(e).unwrap_or(true));
        if skipped {
            self.h.strategy.notify(&self.q.header().meta.space_wake);
        }
        skipped
    }

    /// Take without waiting: [`TryRecvError::Empty`] if nothing is published now,
    /// [`TryRecvError::Disconnected`] if nothing ever will be (empty, and no other handle
    /// can put); [`TryRecvError::Failed`] if the queue is corrupted.
    pub fn try_get(&self) -> Result<T, TryRecvError> {
        self.take().map_err(TryRecvError::from_error)
    }

    /// [`try_get`](Self::try_get) with the crate's `Error`.
    fn take(&self) -> Result<T> {
        if let Some(v) = self.pop()? {
            return Ok(v);
        }
        self.q.len().map_err(|e| Error::from_raw(self.name(), e))?;
        if self.q.has_data()
            && self.unblock()
            && let Some(v) = self.pop()?
        {
            return Ok(v);
        }
        if !self.q.has_data() && !self.h.reg.others_can_put(self.h.slot()) {
            return Err(Error::Disconnected);
        }
        Err(Error::Empty)
    }

    /// Take, waiting at most `timeout` (`None`: forever). The deadline (a clock read) is
    /// only computed once the first attempt found nothing.
    fn get_deadline(&self, timeout: Option<Duration>) -> Result<T> {
        if let Some(v) = self.pop()? {
            return Ok(v);
        }
        let dl = Deadline::after(timeout);
        let mut stalled: Option<(u64, Instant)> = None;
        loop {
            if let Some(v) = self.pop()? {
                return Ok(v);
            }
            let q = self.q;
            if q.has_data() {
                // Claimed but not published: a slow producer, or a dead one.
                let head = q.header().head.load(Ordering::Relaxed);
                match stalled {
                    Some((h, since)) if h == head => {
                        if since.elapsed() >= STALL {
                            self.unblock();
                            stalled = None;
                        }
                    }
                    _ => stalled = Some((head, Instant::now())),
                }
                if dl.expired() {
                    return Err(Error::Timeout);
                }
                std::thread::yield_now();
                continue;
            }
            if self
                .h
                .strategy
                .spin_before_park(self.h.spin)
                .spin_until(move || q.has_data())
            {
                continue;
            }
            if !self.h.reg.others_can_put(self.h.slot()) && !q.has_data() {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            self.h.strategy.park(
                &q.header().meta.data_wake,
                move || q.has_data(),
                dl.slice(SLICE),
            );
        }
    }

    /// Take the next item, waiting while the queue is empty.
    pub fn get(&self) -> Result<T> {
        self.get_deadline(None)
    }

    /// [`get`](Self::get), giving up after `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_deadline(Some(timeout))
    }

    /// The side `get` waits for, for the async forms (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn readable_side(&self) -> crate::wait_side::WaitSide<'_> {
        self.h.readable_side()
    }

    /// The side `put` waits for, for the async forms (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn writable_side(&self) -> crate::wait_side::WaitSide<'_> {
        use crate::wait_side::{WaitSide, Words};
        let q = self.q;
        WaitSide::new(
            Words::Pod(q, false),
            move || q.has_space(),
            move || !self.h.reg.others_alive(self.h.slot()),
        )
    }

    /// Items in the queue, claimed-but-unpublished included (a snapshot).
    pub fn len(&self) -> usize {
        self.q.len().unwrap_or(0) as usize
    }

    /// Whether the queue is empty (a snapshot).
    pub fn is_empty(&self) -> bool {
        !self.q.has_data()
    }

    /// Whether every slot is taken (a snapshot).
    pub fn is_full(&self) -> bool {
        !self.q.has_space()
    }

    /// Slots skipped because their producer died between claiming and publishing.
    pub fn abandoned(&self) -> u64 {
        self.q.abandoned()
    }

    /// This handle will put no more items (see [`Queue::close`](crate::Queue::close)).
    pub fn close(&self) {
        self.h.close();
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.h.spin = spin;
    }

    /// Another handle to the same queue; [`Error::TooManyHandles`] if all
    /// [`MAX_HANDLES`](crate::MAX_HANDLES) are taken.
    pub fn try_clone(&self) -> Result<Self> {
        Self::from_handle(self.h.try_clone()?)
    }

    /// Claim a slot and never publish it: what a producer killed at the worst moment
    /// leaves behind. For tests of the unblocker only (feature `internals`, not covered by
    /// semver).
    #[cfg(feature = "internals")]
    pub fn claim_and_abandon_for_test(&self) -> Result<()> {
        let _claim = self
            .q
            .try_claim(Some(self.h.slot()))
            .map_err(|e| Error::from_raw(self.name(), e))?;
        Ok(())
    }
}

handle_impls!(PodQueue where T: bytemuck::Pod);
