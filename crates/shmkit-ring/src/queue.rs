//! [`Queue`]: the counterpart of Python's `multiprocessing.Queue` (serde items, many
//! producers and consumers), and [`PodQueue`], its `Pod` fast path.
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
//! process died is taken over. A holder that died mid-message never published it (the
//! ring's `tail` is stored last), so the taker simply overwrites the partial bytes.
//!
//! `PodQueue<T: Pod>` skips serialization: fixed-size items in the lock-free MPMC slot
//! queue of [`raw::mpmc`](crate::raw::mpmc), whose consumers skip a slot claimed by a
//! producer that died before publishing it (counted by [`PodQueue::abandoned`]).

use crate::endpoint::ring_at;
use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::raw::RawError;
use crate::raw::mpmc::{self, Mpmc};
use crate::raw::spsc::{self, ConsumerCore, Parked, ProducerCore, Ring};
use crate::registry::{MAX_HANDLES, READY, REGISTRY_BYTES, Registry, Taken};
use crate::wait::{self, SLICE};
use crossbeam_utils::CachePadded;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmkit_segment::{Kind, LivenessGuard, Segment, SegmentHandle};
use shmkit_sync::futex::{Deadline, SpinPolicy};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Items whose encoding fits this many bytes are encoded on the stack.
const ENCODE_STACK: usize = 256;

/// Encode `item` into `stack` if it fits, else into `heap`.
fn encode<'a, T: Serialize>(
    item: &T,
    stack: &'a mut [u8; ENCODE_STACK],
    heap: &'a mut Vec<u8>,
) -> Result<&'a [u8]> {
    match postcard::to_slice(item, stack) {
        Ok(b) => Ok(b),
        Err(postcard::Error::SerializeBufferFull) => {
            *heap = postcard::to_allocvec(item).map_err(Error::Encode)?;
            Ok(heap)
        }
        Err(e) => Err(Error::Encode(e)),
    }
}

/// A core for this turn at a claim lock: resumed from `parked` if our own turn marker
/// is still `mark` (nobody else took the lock since our last turn, and its last holder
/// did not die in it), else attached afresh — after writing our marker, so a holder
/// that dies later in its turn never leaves somebody else's marker behind.
fn resume_or_attach<C>(
    mark: &AtomicU32,
    slot: u32,
    parked: Option<Parked>,
    taken: Taken,
    make: impl FnOnce(Option<Parked>) -> std::result::Result<C, RawError>,
) -> std::result::Result<C, RawError> {
    let mine = slot + 1;
    // Relaxed: written and read only by holders of the claim lock, whose Release
    // (unlock) / Acquire (lock) order it; a taken-over lock ignores it.
    match parked {
        Some(p) if taken == Taken::Free && mark.load(Ordering::Relaxed) == mine => make(Some(p)),
        _ => {
            mark.store(mine, Ordering::Relaxed);
            make(None)
        }
    }
}

/// Default ring capacity of a [`Queue`] (bytes).
pub const DEFAULT_QUEUE_CAPACITY: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
struct QueueWire {
    segment: SegmentHandle,
}

/// A ring core parked between this handle's turns at a claim lock. Only the lock
/// holder touches it, and the claim lock's Acquire/Release orders it between our
/// threads, so Relaxed words suffice: no second lock (and no locked instruction) on
/// the hot path.
#[derive(Debug)]
struct ParkedCell {
    /// 1 while a state is parked.
    valid: AtomicU32,
    pos: AtomicU64,
    other: AtomicU64,
    count: AtomicU64,
}

impl ParkedCell {
    fn new() -> Self {
        ParkedCell {
            valid: AtomicU32::new(0),
            pos: AtomicU64::new(0),
            other: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Take the parked state out (the cell is empty until [`put`](Self::put)).
    fn take(&self) -> Option<Parked> {
        use Ordering::Relaxed;
        // A load and a store, not a swap: only the lock holder gets here, and a swap
        // would be a locked instruction on the hot path.
        let valid = self.valid.load(Relaxed) == 1;
        self.valid.store(0, Relaxed);
        valid.then(|| Parked {
            pos: self.pos.load(Relaxed),
            other: self.other.load(Relaxed),
            count: self.count.load(Relaxed),
        })
    }

    fn put(&self, p: Parked) {
        use Ordering::Relaxed;
        self.pos.store(p.pos, Relaxed);
        self.other.store(p.other, Relaxed);
        self.count.store(p.count, Relaxed);
        self.valid.store(1, Relaxed);
    }
}

/// Shared part of every handle of one queue.
#[derive(Debug)]
struct Inner {
    reg: Registry,
    guard: LivenessGuard,
    /// Counted in `in_transit` once, however often this handle is serialized
    /// (an encoder may serialize twice: once to size, once to write).
    transit: std::sync::Once,
}

impl Inner {
    fn slot(&self) -> u32 {
        self.guard.slot()
    }
}

/// A multi-producer multi-consumer queue of serde-encoded `T` in shared memory.
/// Like Python's `multiprocessing.Queue` (and `JoinableQueue`: see
/// [`task_done`](Self::task_done) and [`join`](Self::join)).
///
/// Cloning registers a new handle; a handle is also `Serialize`/`Deserialize`, so it
/// can be passed to a child process as an argument (the child registers its own).
///
/// ```
/// let q = shmkit_ring::Queue::<String>::create(&format!("shmkit-doc-q-{}", std::process::id()), 1 << 12)?;
/// q.put(&"hello".to_string())?;
/// assert_eq!(q.len(), 1);
/// assert_eq!(q.get()?, "hello");
/// assert!(matches!(q.try_get(), Err(shmkit_ring::Error::Empty) | Err(shmkit_ring::Error::Disconnected)));
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    inner: Inner,
    ring: Ring,
    spin: SpinPolicy,
    /// This handle's producer core, kept across `put`s while no other handle produced
    /// (the turn marker says so), which saves reloading the shared positions — lines
    /// the consumer is working on — on every item. Used only under the producer lock.
    prod_park: ParkedCell,
    /// Same for the consumer side.
    cons_park: ParkedCell,
    _t: PhantomData<fn(T) -> T>,
}

fn queue_ring(seg: &Segment) -> Result<Ring> {
    let cap = seg
        .len()
        .saturating_sub(REGISTRY_BYTES + spsc::HEADER_BYTES) as u64;
    ring_at(seg, REGISTRY_BYTES, cap)
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Create a named queue whose ring holds `capacity` bytes (a power of two; each item
    /// takes its encoded size rounded up to 8, plus 8).
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Self::create_in(Some(name), capacity)
    }

    /// Create an anonymous queue (no name in `/dev/shm`), shared with children by
    /// passing a handle.
    pub fn anonymous(capacity: usize) -> Result<Self> {
        Self::create_in(None, capacity)
    }

    fn create_in(name: Option<&str>, capacity: usize) -> Result<Self> {
        let cap = capacity as u64;
        if !spsc::valid_capacity(cap) {
            return Err(Error::InvalidCapacity {
                capacity: cap,
                why: "a queue's capacity must be a power of two between 32 bytes and 1 TiB",
            });
        }
        let size = REGISTRY_BYTES + spsc::HEADER_BYTES + capacity;
        let b = |n: &str| Segment::builder(n).size(size).kind(Kind::Queue);
        let seg = match name {
            Some(n) => b(n).create()?,
            None => b("anonymous").anonymous()?,
        };
        let ring = queue_ring(&seg)?;
        ring.header().init(cap);
        let reg = Registry::new(Arc::new(seg))?;
        reg.header().ready.store(READY, Ordering::Release);
        Self::from_registry(reg)
    }

    /// Open the queue `name` as a new handle.
    pub fn open(name: &str) -> Result<Self> {
        let seg = Segment::builder(name).kind(Kind::Queue).open()?;
        Self::from_registry(Registry::new(Arc::new(seg))?)
    }

    fn from_registry(reg: Registry) -> Result<Self> {
        reg.wait_ready()?;
        let ring = queue_ring(&reg.seg)?;
        let guard = reg.register(|_| true)?;
        Ok(Queue {
            inner: Inner {
                reg,
                guard,
                transit: std::sync::Once::new(),
            },
            ring,
            spin: SpinPolicy::DEFAULT,
            prod_park: ParkedCell::new(),
            cons_park: ParkedCell::new(),
            _t: PhantomData,
        })
    }

    fn name(&self) -> &str {
        self.inner.reg.seg.name()
    }

    /// Put `item`, waiting while the queue is full.
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_deadline(item, None)
    }

    /// [`put`](Self::put), giving up after `timeout` with [`Error::Timeout`].
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_deadline(item, Some(timeout))
    }

    /// Put without waiting: [`Error::Full`] if there is no room now.
    pub fn try_put(&self, item: &T) -> Result<()> {
        let (mut stack, mut heap) = ([0u8; ENCODE_STACK], Vec::new());
        let bytes = encode(item, &mut stack, &mut heap)?;
        match self.put_once(bytes, None)? {
            true => Ok(()),
            false => Err(Error::Full),
        }
    }

    /// Put the encoded bytes if they fit now (`Ok(false)` if not).
    fn put_once(&self, bytes: &[u8], timeout: Option<Duration>) -> Result<bool> {
        let reg = &self.inner.reg;
        let me = self.inner.slot();
        if reg.is_closed(me) {
            return Err(Error::Closed);
        }
        let lock = &reg.header().prod_lock;
        let taken = reg.lock(lock, me, timeout)?;
        let res = self.put_locked(bytes, taken);
        reg.unlock(lock);
        if let Ok(true) = res {
            wait::notify(&self.ring.header().meta.data_wake, true);
        }
        res
    }

    /// One turn at the producer lock: resume our parked core if we were the last to
    /// produce, else attach afresh; copy in and publish if there is room.
    fn put_locked(&self, bytes: &[u8], taken: Taken) -> Result<bool> {
        let mark = &self.inner.reg.header().last_producer;
        let parked = self.prod_park.take();
        let core = resume_or_attach(mark, self.inner.slot(), parked, taken, |p| match p {
            Some(p) => ProducerCore::resume(self.ring, p),
            None => ProducerCore::attach(self.ring),
        });
        let mut core = core.map_err(|e| Error::from_raw(self.name(), e))?;
        let res = match core.reserve(bytes.len()) {
            Ok(mut g) => {
                g.as_mut_slice().copy_from_slice(bytes);
                // Publishes the ring's message count (the items put, for task_done and
                // join) before the tail that makes the item visible.
                g.commit();
                Ok(true)
            }
            Err(RawError::Full) => Ok(false),
            // Not parked again: the next turn attaches and re-validates.
            Err(e) => return Err(Error::from_raw(self.name(), e)),
        };
        self.prod_park.put(core.park());
        res
    }

    fn put_deadline(&self, item: &T, timeout: Option<Duration>) -> Result<()> {
        let (mut stack, mut heap) = ([0u8; ENCODE_STACK], Vec::new());
        let bytes = encode(item, &mut stack, &mut heap)?;
        if self.put_once(bytes, timeout)? {
            return Ok(());
        }
        let dl = Deadline::after(timeout);
        let cap = self.ring.capacity();
        // Hysteresis: once full, wait for an eighth of the ring (or the record, if
        // larger) to drain, so producers and consumers then work on different parts
        // of the ring instead of trading one cache line per item at the full mark.
        let rec = spsc::record_len(bytes.len() as u64).max(cap / 8);
        let mut ask_kernel = false;
        loop {
            if self.put_once(bytes, dl.remaining())? {
                return Ok(());
            }
            let ring = self.ring;
            let fits = move || ring.used_bytes() + rec <= cap;
            if self.spin.spin_until(fits) {
                continue;
            }
            // Scanning the other handles costs syscalls: only after a sleep nobody cut
            // short (a live consumer keeps waking us), or when time is up.
            if (ask_kernel || dl.expired()) && !self.inner.reg.others_alive(self.inner.slot()) {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            ask_kernel = wait::sleep(&ring.header().meta.space_wake, fits, dl.slice(SLICE));
        }
    }

    /// Take one item if there is one now (`Ok(None)` if empty).
    fn get_once(&self, timeout: Option<Duration>) -> Result<Option<T>> {
        let reg = &self.inner.reg;
        let me = self.inner.slot();
        let lock = reg.cons_lock();
        let taken = reg.lock(lock, me, timeout)?;
        let res = self.get_locked(taken);
        reg.unlock(lock);
        // Also after an empty read: skipping padding freed room.
        wait::notify(&self.ring.header().meta.space_wake, true);
        res
    }

    /// One turn at the consumer lock (see [`put_locked`](Self::put_locked)).
    fn get_locked(&self, taken: Taken) -> Result<Option<T>> {
        let mark = self.inner.reg.last_consumer();
        let parked = self.cons_park.take();
        let core = resume_or_attach(mark, self.inner.slot(), parked, taken, |p| match p {
            Some(p) => ConsumerCore::resume(self.ring, p),
            None => ConsumerCore::attach(self.ring),
        });
        let mut core = core.map_err(|e| Error::from_raw(self.name(), e))?;
        let res = match core.read() {
            Ok(Some(g)) => {
                let v = postcard::from_bytes::<T>(&g).map_err(Error::Decode);
                g.release();
                v.map(Some)
            }
            Ok(None) => Ok(None),
            Err(e) => return Err(Error::from_raw(self.name(), e)),
        };
        self.cons_park.put(core.park());
        res
    }

    /// Take the next item, waiting while the queue is empty. [`Error::Disconnected`] if
    /// it is empty and no other handle can put any more (all dropped, closed or dead).
    pub fn get(&self) -> Result<T> {
        self.get_deadline(None)
    }

    /// [`get`](Self::get), giving up after `timeout` with [`Error::Timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_deadline(Some(timeout))
    }

    /// Take without waiting: [`Error::Empty`] if nothing is there now
    /// ([`Error::Disconnected`] if nothing ever will be).
    pub fn try_get(&self) -> Result<T> {
        if let Some(v) = self.get_once(None)? {
            return Ok(v);
        }
        if !self.inner.reg.others_can_put(self.inner.slot()) {
            if let Some(v) = self.get_once(None)? {
                return Ok(v);
            }
            return Err(Error::Disconnected);
        }
        Err(Error::Empty)
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
            if self.spin.spin_until(move || ring.has_data()) {
                continue;
            }
            // As in `put`: scan the handles only after an uninterrupted sleep.
            if (ask_kernel || dl.expired()) && !self.inner.reg.others_can_put(self.inner.slot()) {
                // Drain what the departed producers committed.
                if let Some(v) = self.get_once(dl.remaining())? {
                    return Ok(v);
                }
                if !ring.has_data() {
                    return Err(Error::Disconnected);
                }
                continue;
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            ask_kernel = wait::sleep(
                &ring.header().meta.data_wake,
                move || ring.has_data(),
                dl.slice(SLICE),
            );
        }
    }

    /// Items in the queue (a snapshot, like Python's `qsize`).
    pub fn len(&self) -> usize {
        self.ring.message_count() as usize
    }

    /// Whether the queue is empty (a snapshot).
    pub fn is_empty(&self) -> bool {
        !self.ring.has_data()
    }

    /// Whether not even a zero-size item fits now (a snapshot).
    pub fn is_full(&self) -> bool {
        self.ring.used_bytes() + spsc::LEN_WORD * 2 > self.ring.capacity()
    }

    /// Declare that this handle will put no more items (Python's `close`). Other handles
    /// see [`Error::Disconnected`] from `get` on an empty queue once no open handle is
    /// left. Later `put`s through this handle return [`Error::Closed`].
    pub fn close(&self) {
        self.inner.reg.close(self.inner.slot());
        let m = &self.ring.header().meta;
        wait::notify(&m.data_wake, true);
    }

    /// Mark one item taken by `get` as processed (`JoinableQueue.task_done`).
    /// [`Error::TaskDoneTooMany`] if called more often than items were put.
    pub fn task_done(&self) -> Result<()> {
        self.inner.reg.task_done(|| self.items_put())
    }

    /// Items ever put: the ring's message count.
    fn items_put(&self) -> u64 {
        // Acquire, paired with the Release store of `tail` that follows the count's
        // store in `ProducerCore::publish` (a statistic otherwise).
        self.ring.header().tail.count.load(Ordering::Acquire)
    }

    /// Wait until every item put has been marked [`task_done`](Self::task_done).
    pub fn join(&self) -> Result<()> {
        self.inner.reg.join(Deadline::NEVER, || self.items_put())
    }

    /// [`join`](Self::join), giving up after `timeout` with [`Error::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.inner
            .reg
            .join(Deadline::after(Some(timeout)), || self.items_put())
    }

    /// Largest encoded item the queue can ever hold.
    pub fn max_item_bytes(&self) -> usize {
        self.ring.max_message()
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.spin = spin;
    }

    /// Another handle to the same queue (registers a new slot).
    pub fn try_clone(&self) -> Result<Self> {
        let reg = Registry {
            seg: Arc::clone(&self.inner.reg.seg),
        };
        Self::from_registry(reg)
    }
}

impl<T: Serialize + DeserializeOwned> Clone for Queue<T> {
    /// Register another handle. Panics only if all 64 handle slots are taken (use
    /// [`Queue::try_clone`] to get that as an error).
    fn clone(&self) -> Self {
        self.try_clone().expect("Queue::clone: no free handle slot")
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        self.inner.reg.unregister(self.inner.slot());
        let m = &self.ring.header().meta;
        wait::notify(&m.data_wake, true);
        wait::notify(&m.space_wake, true);
    }
}

impl<T> Serialize for Queue<T> {
    /// Another process gets its own handle; until one process has opened it, consumers
    /// do not count the queue as disconnected. (A serialized handle that is never
    /// opened keeps the queue "connected": `get` then ends only by timeout.)
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner
            .transit
            .call_once(|| self.inner.reg.begin_transit());
        QueueWire {
            segment: self.inner.reg.seg.handle(),
        }
        .serialize(s)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = QueueWire::deserialize(d)?;
        let seg = wire.segment.open().map_err(serde::de::Error::custom)?;
        let reg = Registry::new(Arc::new(seg)).map_err(serde::de::Error::custom)?;
        let q = Self::from_registry(reg).map_err(serde::de::Error::custom)?;
        q.inner.reg.end_transit();
        Ok(q)
    }
}

// ---------------------------------------------------------------------------------

const MPMC_OFFSET: usize = REGISTRY_BYTES;
const TABLE_OFFSET: usize = MPMC_OFFSET + mpmc::HEADER_BYTES;
const SEQS_OFFSET: usize = TABLE_OFFSET + MAX_HANDLES as usize * mpmc::ENTRY_BYTES;

/// A multi-producer multi-consumer queue of fixed-size `Pod` items: the fast path of
/// [`Queue`] that skips serialization (lock-free MPMC slots).
///
/// ```
/// let q = shmkit_ring::PodQueue::<u64>::create(&format!("shmkit-doc-pq-{}", std::process::id()), 1024)?;
/// q.put(&7)?;
/// assert_eq!(q.get()?, 7);
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
#[derive(Debug)]
pub struct PodQueue<T> {
    inner: Inner,
    q: Mpmc,
    spin: SpinPolicy,
    _t: PhantomData<fn(T) -> T>,
}

/// How long a consumer waits on a claimed-but-unpublished head slot before it asks
/// whether the claimant is dead.
const STALL: Duration = Duration::from_millis(1);

fn pod_mpmc<T: bytemuck::Pod>(seg: &Segment) -> Result<Mpmc> {
    let item = core::mem::size_of::<T>();
    let stride = mpmc::stride(item) as u64;
    let rest = seg.len().saturating_sub(SEQS_OFFSET) as u64;
    let cap = rest / (8 + stride);
    // Invariant restored: the capacity implied by the mapping's own size is a valid
    // power of two and accounts for every byte.
    if !mpmc::valid_capacity(cap) || cap * (8 + stride) != rest {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!(
                "payload of {} bytes is not a PodQueue of {item}-byte items",
                seg.len()
            ),
        });
    }
    let base = seg.as_ptr();
    // SAFETY: header, table, sequences and payload lie at the offsets above, inside the
    // mapping (SEQS_OFFSET + cap * (8 + stride) == len, checked); all 8-aligned (the
    // payload base is 128-aligned and every offset a multiple of 8). The segment is
    // kept alive (an `Arc` in `Inner`) as long as the `Mpmc` is used.
    let q = unsafe {
        Mpmc::new(
            base.add(MPMC_OFFSET).cast(),
            base.add(TABLE_OFFSET).cast::<CachePadded<AtomicU64>>(),
            MAX_HANDLES,
            base.add(SEQS_OFFSET).cast(),
            base.add(SEQS_OFFSET + cap as usize * 8),
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
        Self::create_in(Some(name), capacity)
    }

    /// Create an anonymous queue, shared with children by passing a handle.
    pub fn anonymous(capacity: usize) -> Result<Self> {
        Self::create_in(None, capacity)
    }

    fn create_in(name: Option<&str>, capacity: usize) -> Result<Self> {
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
        let q = pod_mpmc::<T>(&seg)?;
        q.init_slots();
        let m = &q.header().meta;
        m.capacity.store(cap, Ordering::Relaxed);
        m.item_size
            .store(core::mem::size_of::<T>() as u64, Ordering::Relaxed);
        m.table_len.store(MAX_HANDLES, Ordering::Relaxed);
        let reg = Registry::new(Arc::new(seg))?;
        // Release: publishes the initialised sequences to openers (`wait_ready`).
        reg.header().ready.store(READY, Ordering::Release);
        Self::from_registry(reg)
    }

    /// Open the queue `name` as a new handle (checks the item type).
    pub fn open(name: &str) -> Result<Self> {
        let seg = Segment::builder(name)
            .kind(Kind::MpmcQueue)
            .typed::<T>()
            .open()?;
        Self::from_registry(Registry::new(Arc::new(seg))?)
    }

    fn from_registry(reg: Registry) -> Result<Self> {
        reg.wait_ready()?;
        let q = pod_mpmc::<T>(&reg.seg)?;
        // A table entry whose dead owner's intent may still be needed is not reused.
        let guard = reg.register(|slot| q.claim_entry(slot))?;
        Ok(PodQueue {
            inner: Inner {
                reg,
                guard,
                transit: std::sync::Once::new(),
            },
            q,
            spin: SpinPolicy::DEFAULT,
            _t: PhantomData,
        })
    }

    fn name(&self) -> &str {
        self.inner.reg.seg.name()
    }

    /// Put without waiting: [`Error::Full`] if no slot is free now.
    pub fn try_put(&self, item: &T) -> Result<()> {
        let me = self.inner.slot();
        if self.inner.reg.is_closed(me) {
            return Err(Error::Closed);
        }
        self.q
            .try_push(Some(me), bytemuck::bytes_of(item))
            .map_err(|e| Error::from_raw(self.name(), e))?;
        wait::notify(&self.q.header().meta.data_wake, true);
        Ok(())
    }

    fn put_deadline(&self, item: &T, dl: Deadline) -> Result<()> {
        loop {
            match self.try_put(item) {
                Err(Error::Full) => {}
                r => return r,
            }
            let q = self.q;
            if self.spin.spin_until(move || q.has_space()) {
                continue;
            }
            if !self.inner.reg.others_alive(self.inner.slot()) {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            wait::sleep(
                &q.header().meta.space_wake,
                move || q.has_space(),
                dl.slice(SLICE),
            );
        }
    }

    /// Put `item`, waiting while the queue is full.
    pub fn put(&self, item: &T) -> Result<()> {
        self.put_deadline(item, Deadline::NEVER)
    }

    /// [`put`](Self::put), giving up after `timeout`.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<()> {
        self.put_deadline(item, Deadline::after(Some(timeout)))
    }

    fn pop(&self) -> Result<Option<T>> {
        let mut v = T::zeroed();
        match self.q.try_pop(bytemuck::bytes_of_mut(&mut v)) {
            Ok(()) => {
                wait::notify(&self.q.header().meta.space_wake, true);
                Ok(Some(v))
            }
            Err(RawError::Empty) => Ok(None),
            Err(e) => Err(Error::from_raw(self.name(), e)),
        }
    }

    /// Skip the head slot if its producer died before publishing it.
    fn unblock(&self) -> bool {
        let seg = &self.inner.reg.seg;
        let skipped = self.q.try_unblock(|e| seg.is_alive(e).unwrap_or(true));
        if skipped {
            wait::notify(&self.q.header().meta.space_wake, true);
        }
        skipped
    }

    /// Take without waiting: [`Error::Empty`] if nothing is published now.
    pub fn try_get(&self) -> Result<T> {
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
        if !self.q.has_data() && !self.inner.reg.others_can_put(self.inner.slot()) {
            return Err(Error::Disconnected);
        }
        Err(Error::Empty)
    }

    fn get_deadline(&self, dl: Deadline) -> Result<T> {
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
            if self.spin.spin_until(move || q.has_data()) {
                continue;
            }
            if !self.inner.reg.others_can_put(self.inner.slot()) && !q.has_data() {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            wait::sleep(
                &q.header().meta.data_wake,
                move || q.has_data(),
                dl.slice(SLICE),
            );
        }
    }

    /// Take the next item, waiting while the queue is empty.
    pub fn get(&self) -> Result<T> {
        self.get_deadline(Deadline::NEVER)
    }

    /// [`get`](Self::get), giving up after `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        self.get_deadline(Deadline::after(Some(timeout)))
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

    /// This handle will put no more items (see [`Queue::close`]).
    pub fn close(&self) {
        self.inner.reg.close(self.inner.slot());
        wait::notify(&self.q.header().meta.data_wake, true);
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.spin = spin;
    }

    /// Another handle to the same queue.
    pub fn try_clone(&self) -> Result<Self> {
        Self::from_registry(Registry {
            seg: Arc::clone(&self.inner.reg.seg),
        })
    }

    /// Claim a slot and never publish it: what a producer killed at the worst moment
    /// leaves behind. For tests of the unblocker only.
    #[doc(hidden)]
    pub fn claim_and_abandon_for_test(&self) -> Result<()> {
        let _claim = self
            .q
            .try_claim(Some(self.inner.slot()))
            .map_err(|e| Error::from_raw(self.name(), e))?;
        Ok(())
    }
}

impl<T: bytemuck::Pod> Clone for PodQueue<T> {
    /// Register another handle (panics only if all 64 slots are taken).
    fn clone(&self) -> Self {
        self.try_clone()
            .expect("PodQueue::clone: no free handle slot")
    }
}

impl<T> Drop for PodQueue<T> {
    fn drop(&mut self) {
        self.inner.reg.unregister(self.inner.slot());
        let m = &self.q.header().meta;
        wait::notify(&m.data_wake, true);
        wait::notify(&m.space_wake, true);
    }
}

impl<T> Serialize for PodQueue<T> {
    /// See [`Queue`]'s `Serialize`.
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.inner
            .transit
            .call_once(|| self.inner.reg.begin_transit());
        QueueWire {
            segment: self.inner.reg.seg.handle(),
        }
        .serialize(s)
    }
}

impl<'de, T: bytemuck::Pod> Deserialize<'de> for PodQueue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = QueueWire::deserialize(d)?;
        let seg = wire.segment.open().map_err(serde::de::Error::custom)?;
        let reg = Registry::new(Arc::new(seg)).map_err(serde::de::Error::custom)?;
        let q = Self::from_registry(reg).map_err(serde::de::Error::custom)?;
        q.inner.reg.end_transit();
        Ok(q)
    }
}
