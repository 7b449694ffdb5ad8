//! [`Pipe`]: the counterpart of Python's `multiprocessing.Pipe` — a pair of
//! [`Connection`]s over two SPSC rings in one anonymous segment.

use crate::endpoint::{RxEnd, TxEnd, hand_over, ring_at, tie_to_receiver};
use crate::error::{Error, Result, TryRecvError, TrySendError};
use crate::raw::spsc::{self, HEADER_BYTES, Ring};
use crate::wait::WaitStrategy;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmkit_segment::{Kind, LivenessGuard, Segment, SegmentHandle};
use shmkit_sync::futex::{Deadline, SpinPolicy};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Default bytes per direction of a [`Pipe`].
pub const DEFAULT_PIPE_CAPACITY: usize = 1 << 20;

/// Creates connected [`Connection`] pairs. Like `multiprocessing.Pipe`.
///
/// ```
/// use shmkit_ring::Pipe;
/// let (a, b) = Pipe::new()?;
/// a.send(&("Hello", 1u8))?;
/// assert_eq!(b.recv::<(String, u8)>()?, ("Hello".to_string(), 1));
/// b.send_bytes(b"back")?;
/// assert!(a.poll(Some(std::time::Duration::from_secs(1)))?);
/// assert_eq!(a.recv_bytes()?, b"back");
/// drop(b);
/// assert!(matches!(a.recv_bytes(), Err(shmkit_ring::Error::Disconnected)));
/// # Ok::<(), shmkit_ring::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// A duplex pair (each end sends and receives), 1 MiB per direction.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Result<(Connection, Connection)> {
        Self::with_capacity(DEFAULT_PIPE_CAPACITY, true)
    }

    /// A one-way pair `(reader, writer)`, like `Pipe(duplex=False)`.
    pub fn one_way() -> Result<(Connection, Connection)> {
        Self::with_capacity(DEFAULT_PIPE_CAPACITY, false)
    }

    /// A pair with `capacity` bytes per direction (a power of two >= 128; the largest
    /// message is `capacity - 8`). `duplex = false` gives `(reader, writer)`.
    pub fn with_capacity(capacity: usize, duplex: bool) -> Result<(Connection, Connection)> {
        Self::create(capacity, duplex, WaitStrategy::Blocking)
    }

    /// A builder: capacity, direction and [`WaitStrategy`].
    ///
    /// ```
    /// use shmkit_ring::{Pipe, WaitStrategy};
    /// let (a, b) = Pipe::builder().capacity(1 << 16).wait(WaitStrategy::Backoff).create()?;
    /// a.send(&1u32)?;
    /// assert_eq!(b.recv::<u32>()?, 1);
    /// # Ok::<(), shmkit_ring::Error>(())
    /// ```
    pub fn builder() -> PipeBuilder {
        PipeBuilder {
            capacity: DEFAULT_PIPE_CAPACITY,
            duplex: true,
            strategy: WaitStrategy::Blocking,
        }
    }

    fn create(
        capacity: usize,
        duplex: bool,
        strategy: WaitStrategy,
    ) -> Result<(Connection, Connection)> {
        let cap = capacity as u64;
        if !spsc::valid_capacity(cap) || cap < 128 {
            return Err(Error::InvalidCapacity {
                capacity: cap,
                why: "a pipe's capacity must be a power of two between 128 bytes and 1 TiB",
            });
        }
        let size = 2 * (HEADER_BYTES + capacity);
        let seg = Segment::builder("anonymous")
            .size(size)
            .kind(Kind::Pipe)
            .anonymous()?;
        let (a, b) = rings(&seg)?;
        a.header().init(cap, strategy.code());
        b.header().init(cap, strategy.code());
        let seg = Arc::new(seg);
        let end0 = Connection::attach(Arc::clone(&seg), 0, duplex)?;
        let end1 = Connection::attach(seg, 1, duplex)?;
        // One-way: end 1 only reads, end 0 only writes; Python returns (reader, writer).
        Ok(if duplex { (end0, end1) } else { (end1, end0) })
    }
}

/// Makes a [`Pipe`]'s pair of [`Connection`]s; see [`Pipe::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `create`"]
pub struct PipeBuilder {
    capacity: usize,
    duplex: bool,
    strategy: WaitStrategy,
}

impl PipeBuilder {
    /// Bytes per direction (a power of two >= 128; default 1 MiB).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// One-way: `create` returns `(reader, writer)`, like `Pipe(duplex=False)`.
    pub fn one_way(mut self) -> Self {
        self.duplex = false;
        self
    }

    /// How the two ends wait for each other (recorded in both rings' headers).
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Create the pair.
    pub fn create(self) -> Result<(Connection, Connection)> {
        Pipe::create(self.capacity, self.duplex, self.strategy)
    }
}

/// Ring A carries end 0 -> end 1, ring B end 1 -> end 0: two equal halves of the
/// payload (the one place that says so; `inspect` reads them through here too).
pub(crate) fn rings(seg: &Segment) -> Result<(Ring, Ring)> {
    let cap = (seg.len() / 2).saturating_sub(HEADER_BYTES) as u64;
    let a = ring_at(seg, 0, cap)?;
    let b = ring_at(seg, HEADER_BYTES + cap as usize, cap)?;
    Ok((a, b))
}

#[derive(Serialize, Deserialize)]
struct ConnWire {
    segment: SegmentHandle,
    end: u32,
    duplex: bool,
}

/// One end of a [`Pipe`]. Like `multiprocessing.connection.Connection`: `send`/`recv`
/// of serde values (postcard), `send_bytes`/`recv_bytes`, `poll`, `close`. Methods take
/// `&self` (a sending and a receiving thread may share one end); an end is not `Clone`.
/// An end moves to another process with [`transfer`](Connection::transfer): this handle
/// becomes closed, and the peer waits for the new holder rather than seeing a
/// disconnection.
#[derive(Debug)]
pub struct Connection {
    seg: Arc<Segment>,
    end: u32,
    duplex: bool,
    /// The pipe's wait strategy (from its rings' headers, validated at attach).
    strategy: WaitStrategy,
    tx: Mutex<Option<TxEnd>>,
    rx: Mutex<Option<RxEnd>>,
    guard: Mutex<Option<LivenessGuard>>,
    /// Made ready to move to another process by `transfer`.
    transferred: bool,
    /// The rings whose sides `transfer` gave up (producer side or not), to tie to the
    /// receiving process when serialized.
    handed_over: Vec<(Ring, bool)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Connection {
    fn attach(seg: Arc<Segment>, end: u32, duplex: bool) -> Result<Connection> {
        let guard = seg.hold_liveness(end).map_err(|e| match e {
            shmkit_segment::Error::SlotBusy { .. } => Error::RoleTaken {
                name: seg.name().to_owned(),
                role: "pipe end",
            },
            e => Error::Segment(e),
        })?;
        let (a, b) = rings(&seg)?;
        let (out_ring, in_ring) = if end == 0 { (a, b) } else { (b, a) };
        let peer = 1 - end;
        let sends = duplex || end == 0;
        let recvs = duplex || end == 1;
        let tx = if sends {
            Some(TxEnd::attach(Arc::clone(&seg), out_ring, peer)?)
        } else {
            None
        };
        let rx = if recvs {
            Some(RxEnd::attach(Arc::clone(&seg), in_ring, peer)?)
        } else {
            None
        };
        // Both rings were created with one strategy; each end has at least one of them.
        let strategy = match (&tx, &rx) {
            (Some(t), _) => t.strategy,
            (None, Some(r)) => r.strategy,
            (None, None) => WaitStrategy::Blocking,
        };
        Ok(Connection {
            seg,
            end,
            duplex,
            strategy,
            tx: Mutex::new(tx),
            rx: Mutex::new(rx),
            guard: Mutex::new(Some(guard)),
            transferred: false,
            handed_over: Vec::new(),
        })
    }

    fn with_tx<R>(&self, f: impl FnOnce(&mut TxEnd) -> Result<R>) -> Result<R> {
        match lock(&self.tx).as_mut() {
            Some(tx) => f(tx),
            None => Err(Error::Closed),
        }
    }

    fn with_rx<R>(&self, f: impl FnOnce(&mut RxEnd) -> Result<R>) -> Result<R> {
        match lock(&self.rx).as_mut() {
            Some(rx) => f(rx),
            None => Err(Error::Closed),
        }
    }

    /// Send a serde value (postcard-encoded).
    pub fn send<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let bytes = postcard::to_allocvec(value).map_err(Error::Encode)?;
        self.send_bytes(&bytes)
    }

    /// Send raw bytes, waiting while the pipe is full.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.with_tx(|tx| tx.send(bytes, None))
    }

    /// [`send_bytes`](Self::send_bytes), giving up after `timeout`.
    pub fn send_bytes_timeout(&self, bytes: &[u8], timeout: Duration) -> Result<()> {
        self.with_tx(|tx| tx.send(bytes, Some(timeout)))
    }

    /// Send without waiting: [`TrySendError::Full`] if there is no room now.
    pub fn try_send_bytes(&self, bytes: &[u8]) -> Result<(), TrySendError> {
        self.with_tx(|tx| tx.try_send(bytes))
            .map_err(TrySendError::from_error)
    }

    /// Receive a serde value. [`Error::Disconnected`] (Python's `EOFError`) once the
    /// other end is closed, dropped or dead and everything it sent has been received.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        let bytes = self.recv_bytes()?;
        postcard::from_bytes(&bytes).map_err(Error::Decode)
    }

    /// [`recv`](Self::recv), giving up after `timeout`.
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        let bytes = self.recv_bytes_timeout(timeout)?;
        postcard::from_bytes(&bytes).map_err(Error::Decode)
    }

    /// Receive raw bytes.
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_bytes_into(&mut v)?;
        Ok(v)
    }

    /// Receive raw bytes into `buf` (cleared first), reusing its allocation.
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<()> {
        self.with_rx(|rx| rx.recv(buf, None))
    }

    /// [`recv_bytes`](Self::recv_bytes), giving up after `timeout`.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.with_rx(|rx| rx.recv(&mut v, Some(timeout)))?;
        Ok(v)
    }

    /// [`recv_bytes_into`](Self::recv_bytes_into) without waiting:
    /// [`TryRecvError::Empty`] if nothing is there now.
    pub fn try_recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<(), TryRecvError> {
        self.with_rx(|rx| rx.try_recv(buf))
            .map_err(TryRecvError::from_error)
    }

    /// Whether a message (or the end of the stream) can be received now, waiting at
    /// most `timeout` (`None`: forever; `Some(ZERO)`: just look). Like `Connection.poll`.
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        self.with_rx(|rx| match rx.wait_data(Deadline::after(timeout)) {
            Ok(_) => Ok(true), // data, or the peer is gone (recv will say Disconnected)
            Err(Error::Timeout) => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// The side `recv` waits for, for the async forms (feature `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn readable_side(&self) -> Result<crate::wait_side::WaitSide<'_>> {
        let (ring, peer) = self.with_rx(|rx| Ok((rx.ring, rx.peer)))?;
        Ok(crate::endpoint::data_side(&self.seg, ring, peer))
    }

    /// The side `send` of `len` bytes waits for, for the async forms (feature
    /// `internals`).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn writable_side(&self, len: usize) -> Result<crate::wait_side::WaitSide<'_>> {
        let (ring, peer) = self.with_tx(|tx| Ok((tx.ring, tx.peer)))?;
        Ok(crate::endpoint::space_side(&self.seg, ring, peer, len))
    }

    /// Close this end: the other end's `recv` returns [`Error::Disconnected`] after
    /// draining; this end's operations return [`Error::Closed`].
    pub fn close(&self) {
        if let Some(mut tx) = lock(&self.tx).take() {
            tx.close();
        }
        if let Some(mut rx) = lock(&self.rx).take() {
            rx.close();
        }
        drop(lock(&self.guard).take());
    }

    /// Move this end to another process: pass what this returns as a
    /// [`shmkit_process::spawn`](https://docs.rs/shmkit-process) argument (or serialize
    /// it once) and take it as a `Connection` on the other side — Python's
    /// `Process(target=f, args=(child_conn,))`.
    ///
    /// An end has one holder at a time, so moving it is this explicit call rather than a
    /// side effect of serializing: from here on this handle is closed here, and the peer
    /// waits for the new holder instead of seeing a disconnection. Serializing an end that
    /// was not transferred is an error.
    pub fn transfer(mut self) -> Self {
        if let Some(tx) = lock(&self.tx).take() {
            hand_over(&tx.ring, true);
            self.handed_over.push((tx.ring, true));
        }
        if let Some(rx) = lock(&self.rx).take() {
            hand_over(&rx.ring, false);
            self.handed_over.push((rx.ring, false));
        }
        drop(lock(&self.guard).take());
        self.transferred = true;
        self
    }

    /// Whether this end is closed (or was sent to another process).
    pub fn is_closed(&self) -> bool {
        lock(&self.tx).is_none() && lock(&self.rx).is_none()
    }

    /// The wait strategy the pipe was created with ([`PipeBuilder::wait`]).
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Set how long blocking calls spin before they sleep.
    pub fn set_spin_policy(&mut self, spin: SpinPolicy) {
        if let Some(tx) = lock(&self.tx).as_mut() {
            tx.spin = spin;
        }
        if let Some(rx) = lock(&self.rx).as_mut() {
            rx.spin = spin;
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

impl Serialize for Connection {
    /// Writes the pipe's handle and this end's number, for an end made ready to move by
    /// [`transfer`](Connection::transfer); any other is refused (two holders of one end).
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if !self.transferred {
            let why = "a pipe Connection has one holder: move it to another process with \
                       `.transfer()` (e.g. spawn(f, conn.transfer()))";
            // Said again for the launcher: some encoders (postcard) drop the message.
            shmkit_segment::transit::refuse(why);
            return Err(serde::ser::Error::custom(why));
        }
        for (ring, producer) in &self.handed_over {
            tie_to_receiver(&self.seg, ring, *producer);
        }
        ConnWire {
            segment: self.seg.handle(),
            end: self.end,
            duplex: self.duplex,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let wire = ConnWire::deserialize(d)?;
        if wire.end > 1 {
            return Err(serde::de::Error::custom("pipe end must be 0 or 1"));
        }
        let seg = wire.segment.open().map_err(serde::de::Error::custom)?;
        Connection::attach(Arc::new(seg), wire.end, wire.duplex).map_err(serde::de::Error::custom)
    }
}
