//! [`Queue`]: the counterpart of Python's `multiprocessing.Queue` (serde items, many
//! producers and consumers).
//!
//! # Design
//! `Queue` carries variable-size postcard-encoded messages in the SPSC byte ring,
//! guarded by two short claim locks: one for producers, one for consumers. A lock is
//! held only while a message is copied in (or decoded out) and the ring position
//! published, so the lock-free SPSC protocol still separates the producer side from the
//! consumer side, and the ring keeps strict FIFO order across all producers. The
//! alternative, MPMC slots carrying offsets into a byte heap, needs a second allocator
//! in shared memory whose free list a dead process can corrupt; the claim locks are
//! robust instead: each names its holder's liveness slot, and a lock whose holder's
//! process died is taken over. A holder that died mid-message never published it (an
//! item's commit point is its record's length word), so the taker simply overwrites the
//! partial bytes. Small items share records (raw/packed.rs): a put appends to the
//! record still open, a get takes one item from the record at `head`.

use super::builder::{QueueBuilder, Shape};
use super::codec::{self, Encoded, Scratch};
use super::growth::{self, Growth};
use super::handle::{Flavor, Handle, handle_impls};
use crate::endpoint::ring_at;
use crate::error::{Error, Result, TryRecvError, TrySendError};
use crate::primitive::{AtomicBool, AtomicU32, Ordering};
use crate::raw::RawError;
use crate::raw::packed::{self, PackConsumer, PackLimits, PackProducer};
use crate::raw::spsc::{self, Ring};
use crate::registry::{ClaimGuard, GROWING, PACKED, READY, REGISTRY_BYTES, Registry, Taken};
use crate::wait::SLICE;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_segment::{Kind, Segment};
use shmkit_sync::futex::{Deadline, SpinPolicy};
use shmkit_sync::wake::WakeWord;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The ring core for this turn at a claim lock: the one kept in `cell` if our own turn
/// marker is still `mark` (nobody else took the lock since our last turn, and its last
/// holder did not die in it), else attached afresh — after writing our marker, so a
/// holder that dies later in its turn never leaves somebody else's marker behind.
fn core_for_turn<'c, C>(
    cell: &'c mut Option<C>,
    mark: &AtomicU32,
    slot: u32,
    taken: Taken,
    attach: impl FnOnce() -> std::result::Result<C, RawError>,
) -> std::result::Result<&'c mut C, RawError> {
    let mine = slot + 1;
    // Relaxed: written and read only by holders of the claim lock, whose Release
    // (unlock) / Acquire (lock) order it; a taken-over lock ignores it.
    if taken != Taken::Free || mark.load(Ordering::Relaxed) != mine {
        mark.store(mine, Ordering::Relaxed);
        *cell = None;
    }
    match cell {
        Some(core) => Ok(core),
        empty => Ok(empty.insert(attach()?)),
    }
}

/// What one turn at the put lock did ([`Queue::try_put_turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tried {
    /// The item is in.
    Put,
    /// No room now.
    NoRoom,
    /// An error, left in the caller's slot.
    Failed,
}

/// What one turn at the get lock found ([`Queue::try_get_turn`]).
#[derive(Debug)]
enum Took<T> {
    /// An item, taken.
    Item(T),
    /// Nothing now.
    Empty,
    /// An error, left in the caller's slot.
    Failed,
}

/// A reasonable byte capacity for a fixed-ring [`Queue`] ([`Queue::create`],
/// [`Queue::anonymous`]); [`Queue::new`] needs none.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1 << 20;

/// A ring core kept between this handle's turns at a claim lock, so that a handle that
/// takes turns alone (the common one producer, one consumer) neither reloads the
/// shared positions — lines the other side is working on — nor rebuilds its core on
/// every item. Only the holder of the claim lock touches it ([`ClaimGuard`]).
struct CoreCell<C>(UnsafeCell<Option<C>>);

// SAFETY: the cell is reached only through `get`, whose caller holds the claim lock
// the cell belongs to; the lock admits one holder at a time (across threads and
// processes: its word names the holding handle's slot, and a holder's lock is taken
// over only once its process is dead), and its Acquire/Release order the accesses.
// The core inside is `Send` (it is plain data and a `Ring`, which is `Send`).
unsafe impl<C: Send> Sync for CoreCell<C> {}

impl<C> CoreCell<C> {
    fn new() -> Self {
        CoreCell(UnsafeCell::new(None))
    }

    /// The kept core. `_claim` must hold the claim lock this cell belongs to (the put
    /// lock for the producer core, the get lock for the consumer core).
    fn get<'a>(&'a self, _claim: &'a mut ClaimGuard<'_>) -> &'a mut Option<C> {
        // SAFETY: see the `Sync` impl: the claim lock excludes every other access, and
        // the guard's `&mut` borrow excludes a second `get` in this turn.
        unsafe { &mut *self.0.get() }
    }
}

impl<C> std::fmt::Debug for CoreCell<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoreCell")
    }
}

/// A multi-producer multi-consumer queue of serde-encoded `T` in shared memory.
/// Like Python's `multiprocessing.Queue` (and `JoinableQueue`: see
/// [`task_done`](Self::task_done) and [`join`](Self::join)).
///
/// [`Queue::new`] has no bound, like `Queue()`: `put` never blocks, and memory follows
/// what is unconsumed. [`Queue::builder`] adds a name, a bound in items
/// ([`maxsize`](QueueBuilder::maxsize), like `Queue(maxsize)`) or a fixed ring.
///
/// Cloning registers a new handle; a handle is also `Serialize`/`Deserialize`, so it
/// can be passed to a child process as an argument (the child gets its own, in a slot
/// reserved when it was serialized).
///
/// **Shutdown without sentinels.** A handle counts as a producer once it has put.
/// `get` on an empty queue returns [`Error::Disconnected`] once no other producer is
/// left (each closed, dropped or dead) and no handle is on its way to a live child; on
/// a fresh queue nobody has put yet, so every open handle counts until then. Handles
/// that only get never keep a queue open: with N consumer processes, the producers'
/// [`close`](Self::close) ends every consumer's loop after the drain
/// (`examples/pipeline.rs`).
///
/// ```
/// let q = shmkit_ring::Queue::<String>::new()?;
/// q.put(&"hello".to_string())?;
/// assert_eq!(q.len(), 1);
/// assert_eq!(q.get()?, "hello");
/// // This handle is the only one: nobody else can put.
/// assert!(matches!(q.try_get(), Err(shmkit_ring::TryRecvError::Disconnected)));
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    h: Handle<Ring>,
    /// Copied out of `h` (a `Copy` view of the mapping) for the hot path.
    ring: Ring,
    /// Most items the queue holds (0: no bound in items), copied from its header.
    maxsize: u64,
    /// A growing queue's settings, copied from its header (`None`: a fixed ring).
    growth: Option<Growth>,
    /// When small items share a record (from the ring's capacity).
    limits: PackLimits,
    /// This handle's producer core, kept across `put`s while no other handle produced
    /// (the turn marker says so). Used only under the producer lock.
    prod_core: CoreCell<PackProducer>,
    /// Same for the consumer side.
    cons_core: CoreCell<PackConsumer>,
    /// Whether this handle's last get left a growing queue empty: the give-back of the
    /// pages reserved above the data is looked at only when a get *newly* empties the
    /// queue (see `growth::after_get`).
    left_empty: AtomicBool,
    _t: PhantomData<fn(T) -> T>,
}

impl Flavor for Ring {
    fn attach(seg: &Segment) -> Result<Self> {
        let cap = seg
            .len()
            .saturating_sub(REGISTRY_BYTES + spsc::HEADER_BYTES) as u64;
        ring_at(seg, REGISTRY_BYTES, cap)
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
        // Packed records: an item may wait inside the record at `head`.
        packed::ready(self)
    }

    #[cfg(feature = "internals")]
    fn words(self, data: bool) -> crate::wait_side::Words<'static> {
        crate::wait_side::Words::Ring(self, data)
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Queue<T> {
    /// An anonymous queue without bound, like Python's `Queue()`: `put` never blocks.
    /// Memory grows with what is unconsumed and is given back once it is consumed
    /// (see [`QueueBuilder`] for a name, a bound in items, or a fixed ring).
    pub fn new() -> Result<Self> {
        Self::builder().create()
    }

    /// A builder: a name, a bound in items (`maxsize`, like `Queue(maxsize)`), or a
    /// fixed-size ring.
    ///
    /// ```
    /// let name = format!("shmkit-doc-qb-{}", std::process::id());
    /// let q = shmkit_ring::Queue::<u32>::builder().name(&name).maxsize(2).create()?;
    /// q.put(&1)?;
    /// q.put(&2)?;
    /// assert!(matches!(q.try_put(&3), Err(shmkit_ring::TrySendError::Full)));
    /// # Ok::<(), shmkit_ring::Error>(())
    /// ```
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder::new()
    }

    /// Create a named queue over a fixed ring of at least `capacity` bytes (rounded up
    /// to a power of two; small items take their encoded size plus a length byte or
    /// two, packed into shared records of at most an eighth of the ring; a large item
    /// takes its encoded size rounded up to 8, plus 8):
    /// `put` waits while it is full. [`Queue::builder`] makes unbounded queues.
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_in(Some(name), Shape::fixed(capacity)?)
    }

    /// Create an anonymous queue (no name in `/dev/shm`) over a fixed ring of at least
    /// `capacity` bytes, shared with children by passing a handle. [`Queue::new`] makes
    /// an unbounded one.
    pub fn anonymous(capacity: usize) -> Result<Self> {
        Self::create_in(None, Shape::fixed(capacity)?)
    }

    pub(super) fn create_in(name: Option<&str>, shape: Shape) -> Result<Self> {
        let cap = shape.capacity;
        let size = REGISTRY_BYTES + spsc::HEADER_BYTES + cap as usize;
        // Typed: an opener asking for another item type gets `Mismatch`, not items it
        // cannot decode.
        let mut builder = Segment::builder(name.unwrap_or("anonymous"))
            .size(size)
            .kind(Kind::Queue)
            .typed::<T>();
        if shape.growing {
            // Registry and ring header now; the data pages as items come.
            builder = builder.reserve_only(REGISTRY_BYTES + spsc::HEADER_BYTES);
        }
        let seg = match name {
            Some(_) => builder.create()?,
            None => builder.anonymous()?,
        };
        let ring = Ring::attach(&seg)?;
        ring.header().init(cap, shape.strategy.code());
        let reg = Registry::new(Arc::new(seg))?;
        let h = reg.header();
        let flags = PACKED | if shape.growing { GROWING } else { 0 };
        h.flags.store(flags, Ordering::Relaxed);
        h.growth_step.store(shape.growth_step, Ordering::Relaxed);
        h.maxsize.store(shape.maxsize, Ordering::Relaxed);
        // SYNC: Release, paired with the Acquire in `Registry::wait_ready`: the fields
        // above are visible to every opener.
        h.ready.store(READY, Ordering::Release);
        Self::from_handle(Handle::open(reg, None)?)
    }

    /// Open the queue `name` as a new handle. [`Mismatch`](shmkit_segment::Error::Mismatch)
    /// (naming both types) if it was created for another item type.
    pub fn open(name: &str) -> Result<Self> {
        Self::from_handle(Handle::open_named::<T>(name, Kind::Queue)?)
    }

    fn from_handle(h: Handle<Ring>) -> Result<Self> {
        // Relaxed: written once before `ready` (ordered by `wait_ready`'s Acquire).
        let flags = h.reg.header().flags.load(Ordering::Relaxed);
        if flags & PACKED == 0 {
            return Err(Error::from_raw(
                h.name(),
                RawError::Corrupted(format!(
                    "queue flags {flags:#x} lack PACKED ({PACKED:#x}): its records are \
                     not in this version's format"
                )),
            ));
        }
        Ok(Queue {
            // Relaxed: written once before `ready` (ordered by `wait_ready`'s Acquire).
            maxsize: h.reg.header().maxsize.load(Ordering::Relaxed),
            growth: Growth::of(&h.reg),
            limits: PackLimits::for_capacity(h.flavor.capacity()),
            ring: h.flavor,
            h,
            prod_core: CoreCell::new(),
            cons_core: CoreCell::new(),
            left_empty: AtomicBool::new(false),
            _t: PhantomData,
        })
    }

    fn name(&self) -> &str {
        self.h.name()
    }

    /// Put `item`, waiting while the queue is full.
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_deadline(item, None)
    }

    /// [`put`](Self::put), giving up after `timeout` with [`Error::Timeout`].
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_deadline(item, Some(timeout))
    }

    /// Put without waiting: [`TrySendError::Full`] if there is no room now (only a
    /// queue with a `maxsize`, or a full fixed ring); [`TrySendError::Failed`] if the
    /// item does not encode or can never fit, or this handle is closed. A `Queue` put
    /// never fails for want of consumers (Python's does not either), so this never
    /// returns [`TrySendError::Disconnected`]. The item is the caller's `&T`, still in
    /// its hands.
    pub fn try_put(&self, item: &T) -> Result<(), TrySendError> {
        let mut scratch = Scratch::new();
        let bytes = codec::encode(item, &mut scratch)
            .map_err(|e| TrySendError::Failed(Error::Encode(e)))?;
        match self.put_once(&bytes, None) {
            Ok(true) => Ok(()),
            Ok(false) => Err(TrySendError::Full),
            Err(e) => Err(TrySendError::from_error(e)),
        }
    }

    /// Put the encoded item if it fits now (`Ok(false)` if not).
    #[inline]
    fn put_once(&self, bytes: &Encoded<'_>, timeout: Option<Duration>) -> Result<bool> {
        let mut failure = None;
        match self.try_put_turn(bytes, timeout, &mut failure) {
            // Forgotten, not dropped: a turn that did not fail left it `None`, and a
            // call to drop it costs instructions on every item.
            Tried::Put => {
                std::mem::forget(failure);
                Ok(true)
            }
            Tried::NoRoom => {
                std::mem::forget(failure);
                Ok(false)
            }
            Tried::Failed => Err(failure.expect("a failed turn leaves its error")),
        }
    }

    /// [`put_once`](Self::put_once)'s work. Its outcome comes back in a register, the
    /// error (rare) through `failure`: returned as a `Result<bool>`, the outcome went
    /// through the stack, written as a byte and read back as a word, a load the CPU
    /// cannot serve from its store buffer. The load then waited until every older store
    /// had reached the cache, the item's publication among them, whose cache line the
    /// consumer holds: a fence's cost on every put (docs/benchmarks.md, sixth pass).
    #[inline(never)]
    fn try_put_turn(
        &self,
        bytes: &Encoded<'_>,
        timeout: Option<Duration>,
        failure: &mut Option<Error>,
    ) -> Tried {
        let res = self.h.before_put().and_then(|()| {
            let reg = &self.h.reg;
            let (mut claim, taken) =
                reg.lock_guard(&reg.header().prod_lock, self.h.slot(), timeout)?;
            self.put_locked(bytes, &mut claim, taken)
        });
        match res {
            Ok(put) => {
                // Also after a put that found no room: it closed the open record,
                // which a consumer waiting at its end must step over to give its
                // bytes back.
                self.h.strategy.notify(&self.ring.header().meta.data_wake);
                if put { Tried::Put } else { Tried::NoRoom }
            }
            Err(e) => {
                *failure = Some(e);
                Tried::Failed
            }
        }
    }

    /// One turn at the producer lock: resume our parked core if we were the last to
    /// produce, else attach afresh; copy in and publish if there is room.
    #[inline]
    fn put_locked(
        &self,
        bytes: &Encoded<'_>,
        claim: &mut ClaimGuard<'_>,
        taken: Taken,
    ) -> Result<bool> {
        if self.maxsize != 0 && self.ring.message_count() >= self.maxsize {
            return Ok(false);
        }
        let mark = &self.h.reg.header().last_producer;
        let cell = self.prod_core.get(claim);
        let core = core_for_turn(cell, mark, self.h.slot(), taken, || {
            PackProducer::attach(self.ring, self.limits)
        });
        let core = core.map_err(|e| Error::from_raw(self.name(), e))?;
        if let Some(g) = self.growth {
            growth::before_put(g, &self.h.reg, self.ring, core.end(), bytes.len())?;
        }
        match core.reserve(bytes.len()) {
            Ok(mut g) => {
                bytes.write(g.as_mut_slice());
                // Publishes the ring's message count (the items put, for task_done and
                // join) before the tail that makes the item visible.
                g.commit();
                Ok(true)
            }
            Err(RawError::Full) => Ok(false),
            Err(e) => {
                // Not kept: the next turn attaches and re-validates.
                *cell = None;
                Err(Error::from_raw(self.name(), e))
            }
        }
    }

    fn put_deadline(&self, item: &T, timeout: Option<Duration>) -> Result<()> {
        let mut scratch = Scratch::new();
        let bytes = codec::encode(item, &mut scratch).map_err(Error::Encode)?;
        if self.put_once(&bytes, timeout)? {
            return Ok(());
        }
        let dl = Deadline::after(timeout);
        let cap = self.ring.capacity();
        // Hysteresis: once full, wait for an eighth of the ring (or the record, if
        // larger) to drain, so producers and consumers then work on different parts
        // of the ring instead of trading one cache line per item at the full mark.
        let rec = spsc::footprint(bytes.len() as u64).max(cap / 8);
        let mut ask_kernel = false;
        loop {
            if self.put_once(&bytes, dl.remaining())? {
                return Ok(());
            }
            let ring = self.ring;
            let maxsize = self.maxsize;
            let fits = move || {
                ring.used_bytes() + rec <= cap && (maxsize == 0 || ring.message_count() < maxsize)
            };
            if self
                .h
                .strategy
                .spin_before_park(self.h.spin)
                .spin_until(fits)
            {
                continue;
            }
            // Scanning the other handles costs syscalls: only after a sleep nobody cut
            // short (a live consumer keeps waking us), or when time is up.
            if (ask_kernel || dl.expired()) && !self.h.reg.others_alive(self.h.slot()) {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            ask_kernel =
                self.h
                    .strategy
                    .park(&ring.header().meta.space_wake, fits, dl.slice(SLICE));
        }
    }

    /// Take one item if there is one now (`Ok(None)` if empty).
    #[inline]
    fn get_once(&self, timeout: Option<Duration>) -> Result<Option<T>> {
        let mut failure = None;
        match self.try_get_turn(timeout, &mut failure) {
            // Forgotten, not dropped, as in `put_once`.
            Took::Item(v) => {
                std::mem::forget(failure);
                Ok(Some(v))
            }
            Took::Empty => {
                std::mem::forget(failure);
                Ok(None)
            }
            Took::Failed => Err(failure.expect("a failed turn leaves its error")),
        }
    }

    /// [`get_once`](Self::get_once)'s work, its outcome returned as a small value and
    /// the error (rare) through `failure`, for the reason given at
    /// [`try_put_turn`](Self::try_put_turn).
    #[inline(never)]
    fn try_get_turn(&self, timeout: Option<Duration>, failure: &mut Option<Error>) -> Took<T> {
        let reg = &self.h.reg;
        let (mut claim, taken) = match reg.lock_guard(reg.cons_lock(), self.h.slot(), timeout) {
            Ok(locked) => locked,
            Err(e) => {
                *failure = Some(e);
                return Took::Failed;
            }
        };
        let (took, moved) = self.get_locked(&mut claim, taken, failure);
        drop(claim);
        // Only if `head` moved (also on an empty read that skipped padding): a read that
        // found nothing freed nothing, and a consumer polling an empty queue would
        // otherwise pay a fence per poll.
        if moved {
            self.h.strategy.notify(&self.ring.header().meta.space_wake);
        }
        took
    }

    /// One turn at the consumer lock (see [`put_locked`](Self::put_locked)), and
    /// whether it moved `head` or took an item.
    #[inline]
    fn get_locked(
        &self,
        claim: &mut ClaimGuard<'_>,
        taken: Taken,
        failure: &mut Option<Error>,
    ) -> (Took<T>, bool) {
        let mark = self.h.reg.last_consumer();
        let cell = self.cons_core.get(claim);
        let core = core_for_turn(cell, mark, self.h.slot(), taken, || {
            PackConsumer::attach(self.ring)
        });
        let core = match core {
            Ok(core) => core,
            Err(e) => {
                *failure = Some(Error::from_raw(self.name(), e));
                return (Took::Failed, true);
            }
        };
        let before = (core.head(), core.received());
        let took = match core.read() {
            Ok(Some(g)) => {
                // Never drop an item: one that does not decode is handed back.
                let v = codec::decode::<T>(&g);
                let took = match v {
                    Ok(v) => Took::Item(v),
                    Err(source) => {
                        *failure = Some(Error::Undecodable {
                            name: self.name().to_owned(),
                            bytes: g.to_vec(),
                            source,
                        });
                        Took::Failed
                    }
                };
                g.release();
                took
            }
            Ok(None) => Took::Empty,
            Err(e) => {
                // Not kept: the next turn attaches and re-validates.
                *cell = None;
                *failure = Some(Error::from_raw(self.name(), e));
                return (Took::Failed, true);
            }
        };
        // An item taken (a producer waiting at `maxsize` can go on) or `head` moved
        // (bytes given back).
        let moved = (core.head(), core.received()) != before;
        let gone =
            matches!(took, Took::Item(_)) || matches!(failure, Some(Error::Undecodable { .. }));
        if let Some(g) = self.growth
            && gone
        {
            growth::after_get(g, &self.h.reg, self.ring, self.h.slot(), &self.left_empty);
        }
        (took, moved)
    }

    /// Take the next item, waiting while the queue is empty. [`Error::Disconnected`] if
    /// it is empty and no other handle can put any more (see [`Queue`]: every other
    /// producer closed, dropped or dead). [`Error::Undecodable`] hands back an item that
    /// does not decode as `T`.
    pub fn get(&self) -> Result<T> {
        self.get_deadline(None)
    }

    /// [`get`](Self::get), giving up after `timeout` with [`Error::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_deadline(Some(timeout))
    }

    /// Take without waiting: [`TryRecvError::Empty`] if nothing is there now,
    /// [`TryRecvError::Disconnected`] if nothing ever will be (empty, and no other handle
    /// can put); [`TryRecvError::Failed`] holds the rest, among them
    /// [`Error::Undecodable`] with the bytes of an item taken that does not decode.
    pub fn try_get(&self) -> Result<T, TryRecvError> {
        let taken = |r: Result<Option<T>>| r.map_err(TryRecvError::from_error);
        if let Some(v) = taken(self.get_once(None))? {
            return Ok(v);
        }
        if !self.h.reg.others_can_put(self.h.slot()) {
            if let Some(v) = taken(self.get_once(None))? {
                return Ok(v);
            }
            return Err(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }

    fn get_deadline(&self, timeout: Option<Duration>) -> Result<T> {
        if let Some(v) = self.get_once(timeout)? {
            return Ok(v);
        }
        let dl = Deadline::after(timeout);
        let mut ask_kernel = false;
        loop {
            if let Some(v) = self.get_once(dl.remaining())? {
                return Ok(v);
            }
            let ring = self.ring;
            if self
                .h
                .strategy
                .spin_before_park(self.h.spin)
                .spin_until(move || packed::ready(&ring))
            {
                continue;
            }
            // As in `put`: scan the handles only after an uninterrupted sleep.
            if (ask_kernel || dl.expired()) && !self.h.reg.others_can_put(self.h.slot()) {
                // Drain what the departed producers committed.
                if let Some(v) = self.get_once(dl.remaining())? {
                    return Ok(v);
                }
                if !packed::ready(&ring) {
                    return Err(Error::Disconnected);
                }
                continue;
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            ask_kernel = self.h.strategy.park(
                &ring.header().meta.data_wake,
                move || packed::ready(&ring),
                dl.slice(SLICE),
            );
        }
    }

    /// Take one item if there is one now, without asking whether any producer is left
    /// (`Ok(None)` if empty): the async `get`'s attempt, which asks that only before it
    /// sleeps and once per slice, as the blocking `get` does (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn try_take(&self) -> Result<Option<T>> {
        self.get_once(None)
    }

    /// The side `get` waits for, for the async forms (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn readable_side(&self) -> crate::wait_side::WaitSide<'_> {
        self.h.readable_side()
    }

    /// The side `put(item)` waits for, for the async forms (feature `internals`): ready
    /// when the item fits, as in the blocking `put` (with its hysteresis).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn writable_side(&self, item: &T) -> Result<crate::wait_side::WaitSide<'_>> {
        use crate::wait_side::{WaitSide, Words};
        let mut scratch = Scratch::new();
        let len = codec::encode(item, &mut scratch)
            .map_err(Error::Encode)?
            .len();
        let (ring, maxsize, cap) = (self.ring, self.maxsize, self.ring.capacity());
        let rec = spsc::footprint(len as u64).max(cap / 8);
        Ok(WaitSide::new(
            Words::Ring(ring, false),
            move || {
                ring.used_bytes() + rec <= cap && (maxsize == 0 || ring.message_count() < maxsize)
            },
            move || !self.h.reg.others_alive(self.h.slot()),
        ))
    }

    /// How this queue's producers and consumers wait (fixed at creation).
    pub fn wait_strategy(&self) -> crate::WaitStrategy {
        self.h.strategy
    }

    /// Items in the queue (a snapshot, like Python's `qsize`).
    pub fn len(&self) -> usize {
        self.ring.message_count() as usize
    }

    /// Whether the queue is empty (a snapshot).
    pub fn is_empty(&self) -> bool {
        packed::is_empty(&self.ring)
    }

    /// Whether the queue holds `maxsize` items, or not even a zero-size item fits in
    /// a fixed ring now (a snapshot).
    pub fn is_full(&self) -> bool {
        (self.maxsize != 0 && self.ring.message_count() >= self.maxsize)
            || self.ring.used_bytes() + spsc::LEN_WORD * 2 > self.ring.capacity()
    }

    /// Declare that this handle will put no more items (Python's `close`). Other handles
    /// see [`Error::Disconnected`] from `get` on an empty queue once no producer is
    /// left (see [`Queue`]). Later `put`s through this handle return [`Error::Closed`].
    pub fn close(&self) {
        self.h.close();
    }

    /// Mark one item taken by `get` as processed (`JoinableQueue.task_done`).
    /// [`Error::TaskDoneTooMany`] if called more often than items were put.
    pub fn task_done(&self) -> Result<()> {
        self.h.reg.task_done(|| self.items_put())
    }

    /// Items ever put: the ring's message count.
    fn items_put(&self) -> u64 {
        // Acquire, paired with the Release store of `tail` that follows the count's
        // store in `ProducerCore::publish` (a statistic otherwise).
        self.ring.header().tail.count.load(Ordering::Acquire)
    }

    /// Wait until every item put has been marked [`task_done`](Self::task_done).
    pub fn join(&self) -> Result<()> {
        self.h.reg.join(Deadline::NEVER, || self.items_put())
    }

    /// The side `join` waits for, for the async forms (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn join_side(&self) -> crate::wait_side::WaitSide<'_> {
        self.h.reg.join_side(|| self.items_put())
    }

    /// [`join`](Self::join), giving up after `timeout` with [`Error::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.h
            .reg
            .join(Deadline::after(Some(timeout)), || self.items_put())
    }

    /// Largest encoded item the queue can ever hold.
    pub fn max_item_bytes(&self) -> usize {
        self.ring.max_message()
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.h.spin = spin;
    }

    /// Another handle to the same queue (registers a new slot);
    /// [`Error::TooManyHandles`] if all [`MAX_HANDLES`](crate::MAX_HANDLES) are taken.
    pub fn try_clone(&self) -> Result<Self> {
        Self::from_handle(self.h.try_clone()?)
    }
}

handle_impls!(Queue where T: Serialize + DeserializeOwned + 'static);
