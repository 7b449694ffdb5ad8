//! Single-producer single-consumer byte channels over a shared-memory ring.
//!
//! [`channel`] creates a named ring and returns both roles; [`Producer::open`] and
//! [`Consumer::open`] take a role by name from another process; a role moves to a child
//! process with [`Producer::transfer`] / [`Consumer::transfer`], passed as the child's
//! argument (serializing a role that was not transferred is refused).
//!
//! ```
//! let name = format!("shmkit-doc-spsc-{}", std::process::id());
//! let (mut tx, mut rx) = shmkit_ring::spsc::channel(&name, 1 << 12)?;
//! tx.send(b"hello")?;
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"hello");
//! drop(tx);
//! assert!(matches!(rx.recv_into(&mut buf), Err(shmkit_ring::Error::Disconnected)));
//! # Ok::<(), shmkit_ring::Error>(())
//! ```

use crate::endpoint::{RxEnd, TxEnd, hand_over, ring_at, tie_to_receiver};
use crate::error::{Error, Result, TryRecvError, TrySendError};
use crate::raw::spsc::{self, HEADER_BYTES, Ring};
use crate::wait::WaitStrategy;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmkit_segment::{Kind, LivenessGuard, Segment, SegmentHandle};
use shmkit_sync::futex::{Deadline, SpinPolicy};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

/// Liveness slot of the producer.
const PRODUCER_SLOT: u32 = 0;
/// Liveness slot of the consumer.
const CONSUMER_SLOT: u32 = 1;

fn check_capacity(capacity: usize) -> Result<u64> {
    let cap = capacity as u64;
    if !spsc::valid_capacity(cap) {
        return Err(Error::InvalidCapacity {
            capacity: cap,
            why: "a ring's capacity must be a power of two between 32 bytes and 1 TiB",
        });
    }
    Ok(cap)
}

/// The ring of an SPSC segment: the whole payload, its capacity implied by the mapping's
/// size (the one place that says so; `inspect` reads it through here too).
pub(crate) fn ring_of(seg: &Segment) -> Result<Ring> {
    let cap = seg.len().saturating_sub(HEADER_BYTES) as u64;
    ring_at(seg, 0, cap)
}

fn create_segment(
    name: Option<&str>,
    capacity: usize,
    strategy: WaitStrategy,
) -> Result<Arc<Segment>> {
    let cap = check_capacity(capacity)?;
    let size = HEADER_BYTES + cap as usize;
    let seg = match name {
        Some(n) => Segment::builder(n)
            .size(size)
            .kind(Kind::SpscRing)
            .create()?,
        None => Segment::builder("anonymous")
            .size(size)
            .kind(Kind::SpscRing)
            .anonymous()?,
    };
    let ring = ring_of(&seg)?;
    ring.header().init(cap, strategy.code());
    Ok(Arc::new(seg))
}

fn pair(seg: Arc<Segment>) -> Result<(Producer, Consumer)> {
    let p = Producer::attach(Arc::clone(&seg))?;
    let c = Consumer::attach(seg)?;
    Ok((p, c))
}

/// Create a named ring of `capacity` bytes (a power of two; the largest message is
/// `capacity - 8`) and return both roles. The name is unlinked when the last handle
/// made in this process is dropped; other processes keep their mappings.
pub fn channel(name: &str, capacity: usize) -> Result<(Producer, Consumer)> {
    builder(capacity).name(name).create()
}

/// Like [`channel`], over an anonymous (memfd) segment: no name in `/dev/shm`; the
/// roles reach children by serialization while this process keeps the segment open.
pub fn channel_anonymous(capacity: usize) -> Result<(Producer, Consumer)> {
    builder(capacity).create()
}

/// A builder for a channel of `capacity` bytes: a name (default: anonymous) and a
/// [`WaitStrategy`] (default: [`WaitStrategy::Blocking`]).
///
/// ```
/// use shmkit_ring::{spsc, WaitStrategy};
/// let name = format!("shmkit-doc-spsc-builder-{}", std::process::id());
/// let (mut tx, mut rx) = spsc::builder(1 << 12)
///     .name(&name)
///     .wait(WaitStrategy::Backoff)
///     .create()?;
/// tx.send(b"hi")?;
/// assert_eq!(rx.recv_vec()?, b"hi");
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
pub fn builder(capacity: usize) -> Builder {
    Builder {
        name: None,
        capacity,
        strategy: WaitStrategy::Blocking,
    }
}

/// Makes an SPSC channel; see [`builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `create`"]
pub struct Builder {
    name: Option<String>,
    capacity: usize,
    strategy: WaitStrategy,
}

impl Builder {
    /// A name in `/dev/shm`, so another process can [`Producer::open`] or
    /// [`Consumer::open`] a role (default: anonymous).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// How the two sides wait for each other (recorded in the ring's header).
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Create the ring and return both roles.
    pub fn create(self) -> Result<(Producer, Consumer)> {
        pair(create_segment(
            self.name.as_deref(),
            self.capacity,
            self.strategy,
        )?)
    }
}

/// What a producer or consumer holds as the one holder of its role: the role's liveness
/// slot, until the role moves to another process.
#[derive(Debug)]
struct Role {
    guard: std::sync::Mutex<Option<LivenessGuard>>,
    transferred: Cell<bool>,
}

impl Role {
    /// Take the role's liveness slot ([`Error::RoleTaken`] if a live holder has it).
    fn take(seg: &Segment, slot: u32, role: &'static str) -> Result<Role> {
        let guard = seg.hold_liveness(slot).map_err(|e| match e {
            shmkit_segment::Error::SlotBusy { .. } => Error::RoleTaken {
                name: seg.name().to_owned(),
                role,
            },
            e => Error::Segment(e),
        })?;
        Ok(Role {
            guard: std::sync::Mutex::new(Some(guard)),
            transferred: Cell::new(false),
        })
    }

    /// [`Error::Closed`] once the role has moved away.
    fn live(&self) -> Result<()> {
        if self.transferred.get() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn moved(&self) -> bool {
        self.transferred.get()
    }

    /// Move the role (once): `hand_over` tells the peer, then the slot is given up.
    fn transfer(&self, hand_over: impl FnOnce()) {
        if !self.transferred.replace(true) {
            hand_over();
            drop(self.guard.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
    }
}

/// The named ring's segment, for a role to take.
fn open_ring(name: &str) -> Result<Arc<Segment>> {
    Ok(Arc::new(
        Segment::builder(name).kind(Kind::SpscRing).open()?,
    ))
}

/// How a role travels to another process.
#[derive(Serialize, Deserialize)]
struct RoleWire {
    segment: SegmentHandle,
}

/// The producing role of an SPSC ring. Not `Clone`: there is exactly one.
#[derive(Debug)]
pub struct Producer {
    tx: TxEnd,
    role: Role,
}

impl Producer {
    fn attach(seg: Arc<Segment>) -> Result<Self> {
        let role = Role::take(&seg, PRODUCER_SLOT, "producer")?;
        let ring = ring_of(&seg)?;
        let tx = TxEnd::attach(seg, ring, CONSUMER_SLOT)?;
        Ok(Producer { tx, role })
    }

    /// Take the producer role of the ring `name` ([`Error::RoleTaken`] if a live
    /// producer holds it).
    pub fn open(name: &str) -> Result<Self> {
        Self::attach(open_ring(name)?)
    }

    /// Send one message, waiting while the ring is full. [`Error::Disconnected`] if the
    /// consumer is gone, [`Error::TooLarge`] if it can never fit.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.role.live()?;
        self.tx.send(msg, None)
    }

    /// [`send`](Self::send), giving up after `timeout` with [`Error::Timeout`].
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.role.live()?;
        self.tx.send(msg, Some(timeout))
    }

    /// Send without waiting: [`TrySendError::Full`] if there is no room now.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), TrySendError> {
        self.role.live().map_err(TrySendError::from_error)?;
        self.tx.try_send(msg).map_err(TrySendError::from_error)
    }

    /// Send as many of `msgs` as fit now, in order, published with one store and at
    /// most one wake-up. Returns how many were sent (0 if there is no room now).
    pub fn try_send_batch<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<usize, TrySendError> {
        self.role.live().map_err(TrySendError::from_error)?;
        if self.tx.peer_gone(false) {
            return Err(TrySendError::Disconnected);
        }
        let n = self
            .tx
            .core
            .try_send_batch(msgs)
            .map_err(|e| TrySendError::from_error(Error::from_raw(self.tx.seg.name(), e)))?;
        if n > 0 {
            self.tx.notify();
        }
        Ok(n)
    }

    /// Send all of `msgs`, waiting for room as needed.
    pub fn send_batch<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<()> {
        let mut done = 0;
        while done < msgs.len() {
            let n = self.try_send_batch(&msgs[done..])?;
            if n == 0 {
                self.tx
                    .wait_room(msgs[done].as_ref().len(), Deadline::NEVER)?;
            }
            done += n;
        }
        Ok(())
    }

    /// Reserve room for a message of exactly `len` bytes, waiting while the ring is
    /// full; write it in place and [`commit`](WriteGrant::commit) (zero-copy).
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>> {
        self.role.live()?;
        if self.tx.peer_gone(false) {
            return Err(Error::Disconnected);
        }
        // One look at the room (`TooLarge` for a message that can never fit); wait only
        // if there is none (`wait_room` reports a consumer that goes while we wait).
        let room = match self.find_room(len) {
            Err(Error::Full) => {
                self.tx.wait_room(len, Deadline::NEVER)?;
                self.find_room(len)?
            }
            room => room?,
        };
        Ok(self.grant(room))
    }

    /// Reserve without waiting: [`TrySendError::Full`] if there is no room now,
    /// [`TrySendError::Disconnected`] if the consumer is gone (as [`try_send`](Self::try_send)).
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, TrySendError> {
        self.role.live().map_err(TrySendError::from_error)?;
        if self.tx.peer_gone(false) {
            return Err(TrySendError::Disconnected);
        }
        let room = self.find_room(len).map_err(TrySendError::from_error)?;
        Ok(self.grant(room))
    }

    /// The raw core's room for `len` bytes, its error named after the segment (the
    /// name only on error: no allocation per message).
    #[inline(always)]
    fn find_room(&mut self, len: usize) -> Result<spsc::Room> {
        let seg = &self.tx.seg;
        self.tx
            .core
            .find_room(len)
            .map_err(|e| Error::from_raw(seg.name(), e))
    }

    #[inline(always)]
    fn grant(&mut self, room: spsc::Room) -> WriteGrant<'_> {
        let (ring, strategy) = (self.tx.ring, self.tx.strategy);
        WriteGrant {
            inner: self.tx.core.grant(room),
            ring,
            strategy,
        }
    }

    /// The side `send` of `len` bytes waits for, for the async forms (feature
    /// `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn writable_side(&self, len: usize) -> crate::wait_side::WaitSide<'_> {
        crate::endpoint::space_side(&self.tx.seg, self.tx.ring, self.tx.peer, len)
    }

    /// Largest message this ring can hold.
    pub fn max_message(&self) -> usize {
        self.tx.ring.max_message()
    }

    /// Whether the consumer is gone (asks the kernel about its liveness lock).
    pub fn is_disconnected(&self) -> bool {
        self.tx.peer_gone(true)
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.tx.spin = spin;
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.tx.seg.name()
    }

    /// How this ring's sides wait for each other (fixed at creation, see [`builder`]).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.tx.strategy
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if !self.role.moved() {
            self.tx.close();
        }
    }
}

/// Room for one message in the ring, from [`Producer::reserve`]. Dropping it without
/// [`commit`](Self::commit) publishes nothing.
#[derive(Debug)]
pub struct WriteGrant<'a> {
    inner: spsc::WriteGrant<'a>,
    ring: Ring,
    strategy: WaitStrategy,
}

impl WriteGrant<'_> {
    /// The reserved bytes.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.inner.as_mut_slice()
    }

    /// Publish the message (and wake the consumer if it sleeps).
    #[inline]
    pub fn commit(self) {
        let ring = self.ring;
        self.inner.commit();
        self.strategy.notify(&ring.header().meta.data_wake);
    }
}

/// The consuming role of an SPSC ring. Not `Clone`: there is exactly one.
#[derive(Debug)]
pub struct Consumer {
    rx: RxEnd,
    role: Role,
}

impl Consumer {
    fn attach(seg: Arc<Segment>) -> Result<Self> {
        let role = Role::take(&seg, CONSUMER_SLOT, "consumer")?;
        let ring = ring_of(&seg)?;
        let rx = RxEnd::attach(seg, ring, PRODUCER_SLOT)?;
        Ok(Consumer { rx, role })
    }

    /// Take the consumer role of the ring `name` ([`Error::RoleTaken`] if a live
    /// consumer holds it).
    pub fn open(name: &str) -> Result<Self> {
        Self::attach(open_ring(name)?)
    }

    /// Receive one message into `buf` (cleared first), waiting while the ring is empty.
    /// [`Error::Disconnected`] once the producer is gone and every message it committed
    /// has been received.
    #[inline]
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        self.role.live()?;
        self.rx.recv(buf, None)
    }

    /// [`recv_into`](Self::recv_into), giving up after `timeout` with [`Error::Timeout`].
    pub fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<()> {
        self.role.live()?;
        self.rx.recv(buf, Some(timeout))
    }

    /// Receive without waiting: [`TryRecvError::Empty`] if nothing is there now.
    #[inline]
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<(), TryRecvError> {
        self.role.live().map_err(TryRecvError::from_error)?;
        self.rx.try_recv(buf).map_err(TryRecvError::from_error)
    }

    /// Receive one message as a new `Vec`.
    pub fn recv_vec(&mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_into(&mut v)?;
        Ok(v)
    }

    /// Receive up to `max` messages that are there now, appending them to `out`, with
    /// one store and at most one wake-up. Returns how many (0 if none is there now);
    /// [`TryRecvError::Disconnected`] if none is and the producer is gone.
    pub fn try_recv_batch(
        &mut self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
    ) -> Result<usize, TryRecvError> {
        self.role.live().map_err(TryRecvError::from_error)?;
        let n = self
            .rx
            .core
            .try_recv_batch(out, max)
            .map_err(|e| TryRecvError::from_error(Error::from_raw(self.rx.seg.name(), e)))?;
        self.rx.notify();
        if n == 0 && self.rx.peer_gone(false) && !self.rx.ring.has_data() {
            return Err(TryRecvError::Disconnected);
        }
        Ok(n)
    }

    /// The next message in place (zero-copy), waiting while the ring is empty;
    /// [`release`](ReadGrant::release) it when done.
    #[inline]
    pub fn read(&mut self) -> Result<ReadGrant<'_>> {
        self.read_deadline(None)
    }

    /// [`read`](Self::read), giving up after `timeout` with [`Error::Timeout`].
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>> {
        self.read_deadline(Some(timeout))
    }

    /// Where the next message is, if one is there now: the record is looked at once
    /// per call, and the grant is made from what that look found.
    #[inline(always)]
    fn locate(&mut self) -> Result<Option<spsc::Located>> {
        let before = self.rx.core.position();
        let seg = &self.rx.seg;
        let at = self
            .rx
            .core
            .locate()
            .map_err(|e| Error::from_raw(seg.name(), e))?;
        // Skipping padding moved `head`: let a waiting producer see it. Only then: the
        // release that follows the read notifies anyway, and a second fence per message
        // made the zero-copy path slower than the copying one.
        if self.rx.core.position() != before {
            self.rx.notify();
        }
        Ok(at)
    }

    #[inline(always)]
    fn grant(&mut self, at: spsc::Located) -> ReadGrant<'_> {
        let (ring, strategy) = (self.rx.ring, self.rx.strategy);
        ReadGrant {
            inner: self.rx.core.grant(at),
            ring,
            strategy,
        }
    }

    #[inline]
    fn read_deadline(&mut self, timeout: Option<Duration>) -> Result<ReadGrant<'_>> {
        self.role.live()?;
        let at = match self.locate()? {
            Some(at) => at,
            None => self.wait_message(timeout)?,
        };
        Ok(self.grant(at))
    }

    /// Wait at most `timeout` (`None`: forever) until a message is there:
    /// `Disconnected` if the producer is gone first. The deadline (a clock read, ~26 ns
    /// here: more than the rest of a small message's read) is only computed here, once
    /// the first look found nothing.
    #[cold]
    fn wait_message(&mut self, timeout: Option<Duration>) -> Result<spsc::Located> {
        let dl = Deadline::after(timeout);
        loop {
            if let Some(at) = self.locate()? {
                return Ok(at);
            }
            if !self.rx.wait_data(dl)? {
                // The producer is gone; one last look (padding may hide its last record).
                return self.locate()?.ok_or(Error::Disconnected);
            }
        }
    }

    /// Call `f` on every message there now, up to `max`, in place (zero-copy), then
    /// release them all with one store and at most one wake-up: the cheapest way to
    /// drain a stream of small messages. Returns how many; [`TryRecvError::Empty`] if
    /// none (or [`TryRecvError::Disconnected`] if none and the producer is gone).
    ///
    /// ```
    /// let name = format!("shmkit-doc-batch-{}", std::process::id());
    /// let (mut tx, mut rx) = shmkit_ring::spsc::channel(&name, 1 << 12)?;
    /// tx.send_batch(&[b"a", b"b", b"c"])?;
    /// let mut seen = Vec::new();
    /// assert_eq!(rx.try_read_batch(16, |m| seen.push(m[0]))?, 3);
    /// assert_eq!(seen, b"abc");
    /// # Ok::<(), shmkit_ring::Error>(())
    /// ```
    #[inline]
    pub fn try_read_batch(
        &mut self,
        max: usize,
        f: impl FnMut(&[u8]),
    ) -> Result<usize, TryRecvError> {
        self.role.live().map_err(TryRecvError::from_error)?;
        let seg = &self.rx.seg;
        let n = self
            .rx
            .core
            .read_batch(max, f)
            .map_err(|e| TryRecvError::from_error(Error::from_raw(seg.name(), e)))?;
        if n > 0 {
            self.rx.notify();
            return Ok(n);
        }
        if self.rx.peer_gone(false) && !self.rx.ring.has_data() {
            return Err(TryRecvError::Disconnected);
        }
        Err(TryRecvError::Empty)
    }

    /// [`try_read_batch`](Self::try_read_batch), first waiting (at most `timeout`) for
    /// a message: [`Error::Timeout`] if none came.
    pub fn read_batch_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
        mut f: impl FnMut(&[u8]),
    ) -> Result<usize> {
        // The deadline (a clock read) only once the fast path found nothing.
        match self.try_read_batch(max, &mut f) {
            Err(TryRecvError::Empty) => {}
            other => return other.map_err(Error::from),
        }
        let dl = Deadline::after(Some(timeout));
        loop {
            if !self.rx.wait_data(dl)? && !self.rx.ring.has_data() {
                return Err(Error::Disconnected);
            }
            match self.try_read_batch(max, &mut f) {
                Err(TryRecvError::Empty) => {} // only padding was there
                other => return other.map_err(Error::from),
            }
        }
    }

    /// The next message in place without waiting: [`TryRecvError::Empty`] if none,
    /// [`TryRecvError::Disconnected`] if none and the producer is gone (as
    /// [`try_recv_into`](Self::try_recv_into)).
    #[inline]
    pub fn try_read(&mut self) -> Result<ReadGrant<'_>, TryRecvError> {
        self.role.live().map_err(TryRecvError::from_error)?;
        match self.locate().map_err(TryRecvError::from_error)? {
            Some(at) => Ok(self.grant(at)),
            // Its last records were published before its state: a look after the state
            // finds them.
            None if self.rx.peer_gone(false) => match self.locate() {
                Ok(Some(at)) => Ok(self.grant(at)),
                Ok(None) => Err(TryRecvError::Disconnected),
                Err(e) => Err(TryRecvError::from_error(e)),
            },
            None => Err(TryRecvError::Empty),
        }
    }

    /// The side `recv` and `read` wait for, for the async forms (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn readable_side(&self) -> crate::wait_side::WaitSide<'_> {
        crate::endpoint::data_side(&self.rx.seg, self.rx.ring, self.rx.peer)
    }

    /// Whether the producer is gone (asks the kernel about its liveness lock).
    pub fn is_disconnected(&self) -> bool {
        self.rx.peer_gone(true)
    }

    /// Messages waiting (a snapshot).
    pub fn len(&self) -> usize {
        self.rx.ring.message_count() as usize
    }

    /// Whether no message is waiting (a snapshot).
    #[inline]
    pub fn is_empty(&self) -> bool {
        !self.rx.ring.has_data()
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        self.rx.spin = spin;
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        self.rx.seg.name()
    }

    /// How this ring's sides wait for each other (fixed at creation, see [`builder`]).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.rx.strategy
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if !self.role.moved() {
            self.rx.close();
        }
    }
}

/// One message in place in the ring, from [`Consumer::read`]. Dropping it without
/// [`release`](Self::release) leaves the message in the ring.
#[derive(Debug)]
pub struct ReadGrant<'a> {
    inner: spsc::ReadGrant<'a>,
    ring: Ring,
    strategy: WaitStrategy,
}

impl ReadGrant<'_> {
    /// Consume the message (and wake the producer if it waits for room).
    #[inline]
    pub fn release(self) {
        let (ring, strategy) = (self.ring, self.strategy);
        self.inner.release();
        strategy.notify(&ring.header().meta.space_wake);
    }
}

impl std::ops::Deref for ReadGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.inner
    }
}

macro_rules! role_serde {
    ($ty:ident, $is_producer:expr, $end:ident, $role:literal) => {
        impl $ty {
            #[doc = concat!("Move this ", $role, " role to another process: pass what this returns as a")]
            /// [`shmkit_process::spawn`](https://docs.rs/shmkit-process) argument (or
            /// serialize it once, by any means) and take it by type on the other side.
            ///
            /// A role has one holder at a time, so moving it is this explicit call rather
            /// than a side effect of serializing: from here on this handle has given up its
            /// liveness slot and its operations return [`Error::Closed`]; the peer waits
            /// for the new holder instead of seeing a disconnection. Serializing a role
            /// that was not transferred is an error.
            pub fn transfer(self) -> Self {
                self.role
                    .transfer(|| hand_over(&self.$end.ring, $is_producer));
                self
            }
        }

        impl Serialize for $ty {
            /// Writes the ring's handle, for a role made ready to move by `transfer()`;
            /// any other is refused (it would leave two holders of one role).
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                if !self.role.moved() {
                    let why = concat!(
                        "a ", $role, " is a single-owner role: move it to another process with ",
                        "`.transfer()` (e.g. spawn(f, ", $role, ".transfer()))"
                    );
                    // Said again for the launcher: some encoders (postcard) drop the message.
                    shmkit_segment::transit::refuse(why);
                    return Err(serde::ser::Error::custom(why));
                }
                tie_to_receiver(&self.$end.seg, &self.$end.ring, $is_producer);
                RoleWire {
                    segment: self.$end.seg.handle(),
                }
                .serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let wire = RoleWire::deserialize(d)?;
                let seg = wire.segment.open().map_err(serde::de::Error::custom)?;
                $ty::attach(Arc::new(seg)).map_err(serde::de::Error::custom)
            }
        }
    };
}

role_serde!(Producer, true, tx, "producer");
role_serde!(Consumer, false, rx, "consumer");
