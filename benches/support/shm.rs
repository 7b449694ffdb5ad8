//! The shmkit side of the two-process benches, written once: child roles and measured
//! loops shared by `benches/ring.rs`, `benches/sync.rs`, `benches/segment.rs` and the
//! peers bench (`benches/peers`, which includes `benches/support` by path, as rtrb's
//! performance comparison includes its benches). A criterion id that appears in both
//! runs measures the same code in both.
//!
//! Every wait is bounded: busy-waits give up after [`LONG`] ([`spin_until`]), blocking
//! calls use their `_timeout` forms, and each helper stops and reaps its child on drop.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use shmkit_process::Process;
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Connection, Error, Pipe, Queue, TryRecvError, WaitStrategy};
use shmkit_segment::{Segment, SegmentHandle};
use shmkit_sync::{Event, Handle, SpinPolicy, Value};
use std::sync::atomic::Ordering;

use super::size_label;

/// How long any wait on the other process may take before the bench gives up.
pub const LONG: Duration = Duration::from_secs(60);

/// Control messages are shorter than every payload: 0 bytes = sync, 1 byte = stop.
pub const SYNC: &[u8] = &[];
/// See [`SYNC`].
pub const STOP: &[u8] = &[0];

/// Busy-wait until `poll` yields a value; panics after [`LONG`] instead of spinning
/// forever when the other side is gone.
pub fn spin_until<T>(mut poll: impl FnMut() -> Option<T>) -> T {
    let mut deadline = None;
    let mut n = 0u32;
    loop {
        if let Some(v) = poll() {
            return v;
        }
        std::hint::spin_loop();
        n = n.wrapping_add(1);
        if n.is_multiple_of(1 << 12) {
            let d = *deadline.get_or_insert_with(|| Instant::now() + LONG);
            assert!(
                Instant::now() < d,
                "the other process did not answer within {LONG:?}"
            );
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A segment name no other run or bench uses: `shmkit-bench-{tag}-{pid}-{n}`.
pub fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, StdOrdering::Relaxed);
    format!("shmkit-bench-{tag}-{}-{n}", std::process::id())
}

fn stop_child(child: &mut Process<()>, what: &str) {
    if let Err(e) = child.join_timeout(LONG) {
        panic!("{what} did not stop: {e}");
    }
}

// --- throughput ------------------------------------------------------------------------

/// Child: receive (copy out) every message; answer a sync with one message on `ack`.
pub fn ring_sink(args: (Consumer, Producer)) {
    let (mut rx, mut ack) = args;
    let mut buf = Vec::with_capacity(1 << 20);
    loop {
        match rx.recv_into_timeout(&mut buf, LONG) {
            Ok(()) if buf.is_empty() => ack.send(b"k").expect("ack"),
            Ok(()) if buf.len() == 1 => return,
            Ok(()) => {}
            Err(Error::Disconnected) => return,
            Err(e) => panic!("ring sink: {e}"),
        }
    }
}

/// Child: read each message in place and release it (`read`/`release`, the zero-copy
/// pair of `send`/`recv`), touching its first and last byte; answer a sync on `ack`.
pub fn ring_sink_in_place(args: (Consumer, Producer)) {
    let (mut rx, mut ack) = args;
    loop {
        let msg = match rx.read_timeout(LONG) {
            Ok(msg) => msg,
            Err(Error::Disconnected) => return,
            Err(e) => panic!("zero-copy ring sink: {e}"),
        };
        match msg.len() {
            0 => {
                msg.release();
                ack.send(b"k").expect("ack");
            }
            1 => return,
            n => {
                black_box((msg[0], msg[n - 1]));
                msg.release();
            }
        }
    }
}

/// An SPSC ring to a sink child, and a small ring back for its sync answers.
pub struct RingStream {
    tx: Producer,
    ack_rx: Consumer,
    ack: Vec<u8>,
    child: Process<()>,
}

impl RingStream {
    /// A ring of `capacity` bytes to a child running `sink` (e.g. [`ring_sink`]).
    pub fn spawn(sink: fn((Consumer, Producer)), capacity: usize) -> RingStream {
        Self::spawn_with(sink, capacity, WaitStrategy::Blocking)
    }

    /// [`spawn`](Self::spawn) over a ring built with `strategy`.
    pub fn spawn_with(
        sink: fn((Consumer, Producer)),
        capacity: usize,
        strategy: WaitStrategy,
    ) -> RingStream {
        let (tx, rx) = spsc::builder(capacity)
            .wait(strategy)
            .create()
            .expect("ring");
        let (ack_tx, ack_rx) = spsc::channel_anonymous(4096).expect("ack ring");
        let child = shmkit_process::spawn(sink, (rx.transfer(), ack_tx.transfer()))
            .expect("spawn ring sink");
        RingStream {
            tx,
            ack_rx,
            ack: Vec::new(),
            child,
        }
    }

    /// Time `send` (which streams the sample's messages into the producer) plus a sync:
    /// the time until the child has taken everything (a criterion `iter_custom` body).
    pub fn timed(&mut self, send: impl FnOnce(&mut Producer)) -> Duration {
        let t0 = Instant::now();
        send(&mut self.tx);
        self.tx.send(SYNC).expect("sync");
        self.ack_rx
            .recv_into_timeout(&mut self.ack, LONG)
            .expect("ack");
        t0.elapsed()
    }
}

impl Drop for RingStream {
    fn drop(&mut self) {
        let _ = self.tx.send_timeout(STOP, LONG);
        stop_child(&mut self.child, "the ring sink");
    }
}

/// The `throughput` group, ids `throughput/<transport>/<size>`: for each of `sizes`,
/// `add` gets the group (bytes per message set), the size, its label and a message of
/// that size, and adds one bench per transport.
pub fn throughput_group(
    c: &mut Criterion,
    sizes: &[usize],
    mut add: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, usize, &str, &[u8]),
) {
    let mut g = c.benchmark_group("throughput");
    for &size in sizes {
        g.throughput(Throughput::Bytes(size as u64));
        add(&mut g, size, &size_label(size), &vec![0x5au8; size]);
    }
    g.finish();
}

/// `throughput/spsc_ring/<label>`: `msg` copied in with `send` and out with `recv` by
/// a [`ring_sink`] child, one message per call.
pub fn bench_spsc_ring(g: &mut BenchmarkGroup<'_, WallTime>, label: &str, msg: &[u8], ring: usize) {
    bench_spsc_ring_with(g, "spsc_ring", WaitStrategy::Blocking, label, msg, ring);
}

/// `throughput/<id>/<label>`: [`bench_spsc_ring`] over a ring built with `strategy`.
pub fn bench_spsc_ring_with(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    strategy: WaitStrategy,
    label: &str,
    msg: &[u8],
    ring: usize,
) {
    let mut stream = RingStream::spawn_with(ring_sink, ring, strategy);
    g.bench_function(BenchmarkId::new(id, label), |b| {
        b.iter_custom(|iters| {
            stream.timed(|tx| {
                for _ in 0..iters {
                    tx.send(msg).expect("send");
                }
            })
        })
    });
}

/// `iters` copies of `msg`, each written in place: `reserve`, copy, `commit`.
pub fn send_in_place(tx: &mut Producer, msg: &[u8], iters: u64) {
    for _ in 0..iters {
        let mut grant = tx.reserve(msg.len()).expect("reserve");
        grant.as_mut_slice().copy_from_slice(msg);
        grant.commit();
    }
}

/// Child: take `u64` items; `u64::MAX` is a sync (answered on the ack queue),
/// `u64::MAX - 1` the stop.
pub fn u64_sink(args: (Queue<u64>, Queue<u8>)) {
    let (q, ack) = args;
    loop {
        match q.get_timeout(LONG) {
            Ok(u64::MAX) => ack.put(&1).expect("ack"),
            Ok(v) if v == u64::MAX - 1 => return,
            Ok(v) => {
                black_box(v);
            }
            Err(e) => panic!("u64 sink: {e}"),
        }
    }
}

/// `Queue<u64>` items to a [`u64_sink`] child: the `queue_u64/shmkit/items` figure.
pub struct U64Stream {
    q: Queue<u64>,
    ack: Queue<u8>,
    child: Process<()>,
}

impl U64Stream {
    /// A queue with a 1 MiB ring and its child.
    pub fn spawn() -> U64Stream {
        U64Stream::over(Queue::<u64>::anonymous(1 << 20).expect("queue"))
    }

    /// `q` and its child.
    pub fn over(q: Queue<u64>) -> U64Stream {
        let ack = Queue::<u8>::anonymous(4096).expect("ack");
        let child = shmkit_process::spawn(u64_sink, (q.clone(), ack.clone())).expect("spawn");
        U64Stream { q, ack, child }
    }

    /// Put `iters` items and wait until the child took them all.
    pub fn timed(&self, iters: u64) -> Duration {
        let t0 = Instant::now();
        for i in 0..iters {
            self.q.put(&i).expect("put");
        }
        self.q.put(&u64::MAX).expect("sync");
        self.ack.get_timeout(LONG).expect("ack");
        t0.elapsed()
    }
}

/// `queue_u64/shmkit/items`: `Queue<u64>` items per second into a [`u64_sink`] child,
/// through a fixed 1 MiB ring (put waits while it is full).
pub fn bench_queue_u64(g: &mut BenchmarkGroup<'_, WallTime>) {
    bench_queue_u64_over(g, "shmkit", U64Stream::spawn());
}

/// The same through `stream`'s queue, as `queue_u64/<id>/items`.
pub fn bench_queue_u64_over(g: &mut BenchmarkGroup<'_, WallTime>, id: &str, stream: U64Stream) {
    g.bench_function(BenchmarkId::new(id, "items"), |b| {
        b.iter_custom(|iters| stream.timed(iters))
    });
}

impl Drop for U64Stream {
    fn drop(&mut self) {
        let _ = self.q.put_timeout(&(u64::MAX - 1), LONG);
        stop_child(&mut self.child, "the u64 sink");
    }
}

/// Child of [`QueueEcho`]: puts back every item it gets, until `u64::MAX`.
pub fn queue_echo(args: (Queue<u64>, Queue<u64>)) {
    let (requests, replies) = args;
    loop {
        let v = requests.get_timeout(LONG).expect("echo get");
        replies.put(&v).expect("echo put");
        if v == u64::MAX {
            return;
        }
    }
}

/// `roundtrip/queue_u64/8B`: a `u64` to a [`queue_echo`] child over one `Queue<u64>`
/// and back over another, one in flight (the latency a request and its reply see; both
/// sides wait with the default strategy and spin policy).
pub struct QueueEcho {
    requests: Queue<u64>,
    replies: Queue<u64>,
    child: Process<()>,
}

impl QueueEcho {
    /// Two 64 KiB queues and the echo child.
    pub fn spawn() -> QueueEcho {
        let requests = Queue::<u64>::anonymous(1 << 16).expect("queue");
        let replies = Queue::<u64>::anonymous(1 << 16).expect("queue");
        let child = shmkit_process::spawn(queue_echo, (requests.clone(), replies.clone()))
            .expect("spawn echo");
        QueueEcho {
            requests,
            replies,
            child,
        }
    }

    /// `iters` round trips.
    pub fn timed(&self, iters: u64) -> Duration {
        let t0 = Instant::now();
        for i in 0..iters {
            self.requests.put(&i).expect("put");
            assert_eq!(self.replies.get_timeout(LONG).expect("reply"), i);
        }
        t0.elapsed()
    }
}

impl Drop for QueueEcho {
    fn drop(&mut self) {
        let _ = self.requests.put_timeout(&u64::MAX, LONG);
        let _ = self.replies.get_timeout(LONG);
        stop_child(&mut self.child, "the queue echo");
    }
}

/// Child of [`U64Many`]: a producer. Each command `n` taken from `cmd` puts `n` items
/// and then answers on `done`; `0` stops it.
pub fn u64_producer(args: (Queue<u64>, Queue<u64>, Queue<u8>)) {
    let (q, cmd, done) = args;
    loop {
        match cmd.get_timeout(LONG) {
            Ok(0) => return,
            Ok(n) => {
                for i in 0..n {
                    q.put(&i).expect("put");
                }
                done.put(&1).expect("done");
            }
            Err(e) => panic!("u64 producer: {e}"),
        }
    }
}

/// `Queue<u64>` with `P` producer and `C` consumer children (`queue_u64/shmkit_4x4`):
/// the many-to-many figure, to compare with `python3 benches/python/mp_queue.py
/// --producers 4 --consumers 4`.
pub struct U64Many {
    q: Queue<u64>,
    cmd: Queue<u64>,
    done: Queue<u8>,
    ack: Queue<u8>,
    children: Vec<Process<()>>,
    producers: u64,
    consumers: u64,
}

impl U64Many {
    /// A queue with a 1 MiB ring, `producers` producer children and `consumers`
    /// [`u64_sink`] children.
    pub fn spawn(producers: u64, consumers: u64) -> U64Many {
        let q = Queue::<u64>::anonymous(1 << 20).expect("queue");
        let cmd = Queue::<u64>::anonymous(4096).expect("commands");
        let done = Queue::<u8>::anonymous(4096).expect("done");
        let ack = Queue::<u8>::anonymous(4096).expect("ack");
        let mut children = Vec::new();
        for _ in 0..producers {
            let args = (q.clone(), cmd.clone(), done.clone());
            children.push(shmkit_process::spawn(u64_producer, args).expect("spawn"));
        }
        for _ in 0..consumers {
            let args = (q.clone(), ack.clone());
            children.push(shmkit_process::spawn(u64_sink, args).expect("spawn"));
        }
        U64Many {
            q,
            cmd,
            done,
            ack,
            children,
            producers,
            consumers,
        }
    }

    /// `iters` items split between the producers; returns once every consumer has
    /// taken a sync put after the last item (the queue is FIFO: every item was taken).
    pub fn timed(&self, iters: u64) -> Duration {
        let t0 = Instant::now();
        for k in 0..self.producers {
            let n = iters / self.producers + u64::from(k < iters % self.producers);
            // A producer with no items gets none: `0` would stop it.
            if n > 0 {
                self.cmd.put(&n).expect("command");
            }
        }
        for _ in 0..iters.min(self.producers) {
            self.done.get_timeout(LONG).expect("producer done");
        }
        for _ in 0..self.consumers {
            self.q.put(&u64::MAX).expect("sync");
        }
        for _ in 0..self.consumers {
            self.ack.get_timeout(LONG).expect("ack");
        }
        t0.elapsed()
    }
}

impl Drop for U64Many {
    fn drop(&mut self) {
        for _ in 0..self.producers {
            let _ = self.cmd.put_timeout(&0, LONG);
        }
        for _ in 0..self.consumers {
            let _ = self.q.put_timeout(&(u64::MAX - 1), LONG);
        }
        for child in &mut self.children {
            stop_child(child, "a 4 x 4 queue child");
        }
    }
}

// --- round trip ------------------------------------------------------------------------

/// Child of [`Cacheline`]: answer each odd value of the shared word with the next one.
pub fn cacheline_child(h: SegmentHandle) {
    let seg = h.open().expect("open");
    let word = seg.atomic_u64(0).expect("word");
    let mut seen = 0;
    loop {
        let v = spin_until(|| {
            let v = word.load(Ordering::Acquire);
            (v != seen).then_some(v)
        });
        if v == u64::MAX {
            return;
        }
        if v % 2 == 1 {
            word.store(v + 1, Ordering::Release);
            seen = v + 1;
        }
    }
}

/// The floor of a cross-process round trip: one shared word bounced between two
/// processes (`roundtrip/cacheline/8B`).
pub struct Cacheline {
    seg: Segment,
    next: u64,
    child: Process<()>,
}

impl Cacheline {
    /// A one-word segment and its child.
    pub fn spawn() -> Cacheline {
        let seg = Segment::anonymous(128).expect("segment");
        let child = shmkit_process::spawn(cacheline_child, seg.handle()).expect("spawn");
        Cacheline {
            seg,
            next: 1,
            child,
        }
    }

    /// `iters` round trips.
    pub fn timed(&mut self, iters: u64) -> Duration {
        let word = self.seg.atomic_u64(0).expect("word");
        let t0 = Instant::now();
        for _ in 0..iters {
            let next = self.next;
            word.store(next, Ordering::Release);
            spin_until(|| (word.load(Ordering::Acquire) == next + 1).then_some(()));
            self.next += 2;
        }
        t0.elapsed()
    }
}

impl Drop for Cacheline {
    fn drop(&mut self) {
        if let Ok(word) = self.seg.atomic_u64(0) {
            word.store(u64::MAX, Ordering::Release);
        }
        stop_child(&mut self.child, "the cacheline child");
    }
}

/// Child of [`RingEcho`] busy-polling: the `try_` forms, bounded by [`spin_until`].
pub fn echo_spin(conn: Connection) {
    let mut buf = Vec::new();
    loop {
        spin_until(|| match conn.try_recv_bytes_into(&mut buf) {
            Ok(()) => Some(()),
            Err(TryRecvError::Empty) => None,
            Err(e) => panic!("echo: {e}"),
        });
        if buf.len() == 1 {
            return;
        }
        spin_until(|| conn.try_send_bytes(&buf).ok());
    }
}

/// Child of [`RingEcho`] sleeping on the futex at once (`SpinPolicy::NEVER`).
pub fn echo_blocking(mut conn: Connection) {
    conn.set_spin_policy(SpinPolicy::NEVER);
    let mut buf = Vec::new();
    loop {
        match conn.recv_bytes_into(&mut buf) {
            Ok(()) if buf.len() == 1 => return,
            Ok(()) => conn.send_bytes(&buf).expect("echo"),
            Err(e) => panic!("echo: {e}"),
        }
    }
}

/// A shmkit `Pipe` to a child that echoes every message: `roundtrip/ring_spin` (both
/// sides busy-poll) or `roundtrip/ring_blocking` (both sleep on the futex at once).
pub struct RingEcho {
    conn: Connection,
    spin: bool,
    buf: Vec<u8>,
    child: Process<()>,
}

impl RingEcho {
    /// `spin`: busy-poll both sides; otherwise both block with `SpinPolicy::NEVER`.
    pub fn spawn(spin: bool) -> RingEcho {
        Self::spawn_with(spin, WaitStrategy::Blocking)
    }

    /// [`spawn`](Self::spawn) over a pipe built with `strategy`.
    pub fn spawn_with(spin: bool, strategy: WaitStrategy) -> RingEcho {
        let (mut conn, theirs) = Pipe::builder()
            .capacity(1 << 16)
            .wait(strategy)
            .create()
            .expect("pipe");
        let child = if spin {
            shmkit_process::spawn(echo_spin, theirs.transfer())
        } else {
            conn.set_spin_policy(SpinPolicy::NEVER);
            shmkit_process::spawn(echo_blocking, theirs.transfer())
        }
        .expect("spawn echo");
        RingEcho {
            conn,
            spin,
            buf: Vec::new(),
            child,
        }
    }

    /// `iters` round trips of `msg`.
    pub fn timed(&mut self, iters: u64, msg: &[u8]) -> Duration {
        let (conn, buf) = (&self.conn, &mut self.buf);
        let t0 = Instant::now();
        for _ in 0..iters {
            if self.spin {
                conn.try_send_bytes(msg).expect("send");
                spin_until(|| conn.try_recv_bytes_into(buf).ok());
            } else {
                conn.send_bytes(msg).expect("send");
                conn.recv_bytes_into(buf).expect("recv");
            }
        }
        t0.elapsed()
    }
}

impl Drop for RingEcho {
    fn drop(&mut self) {
        let _ = self.conn.send_bytes(STOP);
        stop_child(&mut self.child, "the ring echo");
    }
}

/// Child of [`SpscEcho`]: echo every message from `rx` on `tx` until [`STOP`].
pub fn spsc_echo((mut rx, mut tx): (Consumer, Producer)) {
    let mut buf = Vec::new();
    loop {
        rx.recv_into_timeout(&mut buf, LONG).expect("echo recv");
        if buf == STOP {
            return;
        }
        tx.send(&buf).expect("echo send");
    }
}

/// Two SPSC rings to a child that echoes (`roundtrip/spsc_busy_poll`): the ring's own
/// round trip, through the blocking API of `BusyPoll` rings, without the lock a `Pipe`
/// end takes per call (a `Connection` is `Sync`).
pub struct SpscEcho {
    tx: Producer,
    rx: Consumer,
    buf: Vec<u8>,
    child: Process<()>,
}

impl SpscEcho {
    /// The two rings (`strategy`) and the child.
    pub fn spawn(strategy: WaitStrategy) -> SpscEcho {
        let ring = || {
            spsc::builder(1 << 16)
                .wait(strategy)
                .create()
                .expect("ring")
        };
        let ((tx, their_rx), (their_tx, rx)) = (ring(), ring());
        let child = shmkit_process::spawn(spsc_echo, (their_rx.transfer(), their_tx.transfer()))
            .expect("spawn echo");
        SpscEcho {
            tx,
            rx,
            buf: Vec::new(),
            child,
        }
    }

    /// `iters` round trips of `msg`.
    pub fn timed(&mut self, iters: u64, msg: &[u8]) -> Duration {
        let t0 = Instant::now();
        for _ in 0..iters {
            self.tx.send(msg).expect("send");
            self.rx.recv_into(&mut self.buf).expect("recv");
        }
        t0.elapsed()
    }
}

impl Drop for SpscEcho {
    fn drop(&mut self) {
        let _ = self.tx.send_timeout(STOP, LONG);
        stop_child(&mut self.child, "the SPSC echo");
    }
}

// --- event wake-up ---------------------------------------------------------------------

/// `spins` spin-loop checks, then (unless zero) the default yields, then the futex.
pub fn spin_policy(spins: u32) -> SpinPolicy {
    SpinPolicy {
        spins,
        yields: if spins == 0 {
            0
        } else {
            SpinPolicy::DEFAULT.yields
        },
    }
}

/// Child of [`EventPingPong`]: wait for ping, answer pong, until told to stop (or
/// [`LONG`] passes without a ping).
pub fn pong_child(args: (Handle<Event>, Handle<Event>, Handle<Value<u32>>, u32)) {
    let mut ping = args.0.open().expect("ping");
    ping.set_spin_policy(spin_policy(args.3));
    let pong = args.1.open().expect("pong");
    let stop = args.2.open().expect("stop");
    let mut idle_since = Instant::now();
    loop {
        if !ping.wait_timeout(Duration::from_secs(1)) {
            if stop.load() != 0 || idle_since.elapsed() > LONG {
                return;
            }
            continue;
        }
        idle_since = Instant::now();
        ping.clear();
        if stop.load() != 0 {
            return;
        }
        pong.set();
    }
}

/// Set an `Event` another process waits on, then wait until it sets one back: two
/// blocking wake-ups per round trip, both sides spinning `spins` times first.
pub struct EventPingPong {
    ping: Event,
    pong: Event,
    stop: Value<u32>,
    child: Process<()>,
}

impl EventPingPong {
    /// The three shared objects and the child.
    pub fn spawn(spins: u32) -> EventPingPong {
        let ping = Event::anonymous().expect("ping");
        let mut pong = Event::anonymous().expect("pong");
        pong.set_spin_policy(spin_policy(spins));
        let stop = Value::anonymous(0u32).expect("stop");
        let child = shmkit_process::spawn(
            pong_child,
            (ping.handle(), pong.handle(), stop.handle(), spins),
        )
        .expect("spawn");
        EventPingPong {
            ping,
            pong,
            stop,
            child,
        }
    }

    /// `iters` round trips.
    pub fn timed(&self, iters: u64) -> Duration {
        let t0 = Instant::now();
        for _ in 0..iters {
            self.ping.set();
            assert!(self.pong.wait_timeout(LONG), "no pong within {LONG:?}");
            self.pong.clear();
        }
        t0.elapsed()
    }
}

impl Drop for EventPingPong {
    fn drop(&mut self) {
        self.stop.store(1);
        self.ping.set();
        stop_child(&mut self.child, "the pong child");
    }
}

// --- segment life cycle ----------------------------------------------------------------

/// `segment_lifecycle/{shmkit,shared_memory}/{4KiB,1MiB}`: create + map + unlink a named
/// segment. shmkit reserves the pages at creation (`fallocate`, so a full `/dev/shm`
/// fails at `create` rather than with SIGBUS later) and writes a header;
/// `shared_memory` does neither.
pub fn segment_lifecycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_lifecycle");
    for size in [4096usize, 1 << 20] {
        let label = size_label(size);
        g.bench_function(BenchmarkId::new("shmkit", &label), |b| {
            b.iter(|| {
                let seg = Segment::create(&unique_name("life"), size).expect("create");
                black_box(seg.as_ptr());
                // Drop unmaps and, as creator, unlinks.
            })
        });
        g.bench_function(BenchmarkId::new("shared_memory", &label), |b| {
            b.iter(|| {
                let shm = shared_memory::ShmemConf::new()
                    .size(size)
                    .os_id(unique_name("life-sm"))
                    .create()
                    .expect("shared_memory create");
                black_box(shm.as_ptr());
                // Drop unmaps and, as owner, unlinks.
            })
        });
    }
    g.finish();
}
