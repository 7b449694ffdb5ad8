//! `shmkit bench`: shared-memory transports against an OS pipe and a Unix socket, two
//! processes on this machine, printed as two tables (throughput and round trip).
//!
//! Every transport is a [`Link`] to a peer process (and, when it is measured for round
//! trips, an [`Echo`]); the two modes, [`throughput`] and [`round_trip`], are written once
//! over those traits. A [`Job`] pairs a transport with the mode it is measured in, by the
//! constructor it holds, so no transport is ever asked for a mode it does not have.
//!
//! The peer process is this same binary re-executed with the hidden `bench-peer`
//! subcommand. Shared-memory peers get their segment by name (or a serialized role: the
//! documented hand-over of an SPSC role) and report on their stdout; pipe and socket
//! peers use their stdin and stdout as the transport. Every wait is bounded: shared-memory
//! calls use their `_timeout` forms, socket reads a read timeout, and a watchdog kills a
//! peer that outlives its measurement by [`PEER_GRACE`] (its pipes then read EOF). Waits
//! spin briefly, then sleep (the libraries' default `SpinPolicy`). Segments are named
//! `shmkit-bench-<pid>-<n>` and unlinked when the measurement's handles drop.
//!
//! Frames on pipes and sockets are those of [`crate::frame`] (one `write_all` per
//! message, read through a 64 KiB buffer). A zero-length message (a zero item for the
//! queue, the stop event for events) ends a run; a peer then answers with 16 bytes:
//! messages and bytes it received, which the parent checks.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use shmkit_ring::Queue;
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_sync::Event;

use crate::frame;

/// Longest any single blocking call waits for the peer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past its measurement a peer may live before the watchdog kills it.
const PEER_GRACE: Duration = Duration::from_secs(15);
/// Data area of the throughput ring.
const RING_CAPACITY: usize = 1 << 20;
/// Largest message size `shmkit bench` measures (and a frame a peer accepts).
const MAX_SIZE: usize = 1 << 20;

/// Which transport a row is about (its label, and which rows are the pipe baseline).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    SpscRing,
    QueueU64,
    Event,
    Pipe,
    UnixSocket,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::SpscRing => "shm spsc ring",
            Transport::QueueU64 => "shm Queue<u64>",
            Transport::Event => "shm Event wake-up",
            Transport::Pipe => "pipe",
            Transport::UnixSocket => "unix socket",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Throughput,
    RoundTrip,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Throughput => "throughput",
            Mode::RoundTrip => "round trip",
        }
    }
}

/// The parent's end of a transport to a bench peer that counts what it receives.
trait Link {
    /// Send one message (every wait bounded by [`IO_TIMEOUT`]).
    fn send(&mut self, msg: &[u8]) -> Result<(), String>;
    /// End the run: tell the peer, then read what it counted (messages, bytes).
    fn finish(&mut self) -> Result<(u64, u64), String>;
    /// Close the transport and reap the peer (bounded by its watchdog).
    fn close(self: Box<Self>) -> Result<(), String>;
}

/// A [`Link`] whose peer sends every message back.
trait Echo: Link {
    /// Receive the peer's answer into `buf`.
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<(), String>;
}

/// Starts a transport's peer for a message size; the peer lives at most `deadline`.
type Open<L> = fn(size: usize, deadline: Duration) -> Result<Box<L>, String>;

/// How a job measures: the mode, with the constructor of a transport that has it.
#[derive(Clone, Copy)]
enum Measure {
    Throughput(Open<dyn Link>),
    RoundTrip(Open<dyn Echo>),
}

#[derive(Clone, Copy)]
struct Job {
    transport: Transport,
    size: usize,
    measure: Measure,
}

impl Job {
    fn mode(&self) -> Mode {
        match self.measure {
            Measure::Throughput(_) => Mode::Throughput,
            Measure::RoundTrip(_) => Mode::RoundTrip,
        }
    }
}

struct Measured {
    transport: Transport,
    size: usize,
    mode: Mode,
    /// Throughput: messages and seconds. Round trip: per-trip nanoseconds, sorted.
    messages: u64,
    secs: f64,
    trips_ns: Vec<u64>,
}

fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn si(x: f64, unit: &str) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2} G{unit}", x / 1e9),
        x if x >= 1e6 => format!("{:.2} M{unit}", x / 1e6),
        x if x >= 1e3 => format!("{:.1} k{unit}", x / 1e3),
        x => format!("{x:.0} {unit}"),
    }
}

fn duration_label(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000 => format!("{:.2} ms", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.2} us", n as f64 / 1e3),
        n => format!("{n} ns"),
    }
}

fn jobs(sizes: &[usize]) -> Vec<Job> {
    use Measure::{RoundTrip, Throughput};
    let job = |transport, size, measure| Job {
        transport,
        size,
        measure,
    };
    let mut v = Vec::new();
    for &size in sizes {
        v.push(job(Transport::SpscRing, size, Throughput(RingSink::open)));
        v.push(job(
            Transport::Pipe,
            size,
            Throughput(StreamLink::pipe_sink),
        ));
        v.push(job(
            Transport::UnixSocket,
            size,
            Throughput(StreamLink::socket_sink),
        ));
    }
    v.push(job(Transport::QueueU64, 8, Throughput(QueueSink::open)));
    for &size in sizes {
        v.push(job(Transport::SpscRing, size, RoundTrip(RingEcho::open)));
        v.push(job(Transport::Pipe, size, RoundTrip(StreamLink::pipe_echo)));
        v.push(job(
            Transport::UnixSocket,
            size,
            RoundTrip(StreamLink::socket_echo),
        ));
    }
    v.push(job(Transport::Event, 0, RoundTrip(EventEcho::open)));
    v
}

/// `shmkit bench`. `per_run`: how long each measurement runs.
pub(crate) fn run(
    quick: bool,
    per_run: Option<Duration>,
    sizes: Option<Vec<usize>>,
) -> Result<(), String> {
    let per_run = per_run.unwrap_or(if quick {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    });
    let sizes = sizes.unwrap_or_else(|| vec![8, 64, 64 << 10]);
    if let Some(&s) = sizes.iter().find(|&&s| s == 0 || s > MAX_SIZE) {
        return Err(format!("message size {s} is not in 1..={MAX_SIZE}"));
    }
    let jobs = jobs(&sizes);
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let mut results = Vec::new();
    for job in jobs {
        bar.set_message(format!(
            "{} {} {}",
            job.mode().label(),
            job.transport.label(),
            size_label(job.size)
        ));
        let r = measure(job, per_run).map_err(|e| {
            bar.abandon();
            format!("bench failed: {e}")
        })?;
        results.push(r);
        bar.inc(1);
    }
    bar.finish_and_clear();
    print_tables(&results, per_run);
    Ok(())
}

fn print_tables(results: &[Measured], per_run: Duration) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "shmkit bench: two processes on this machine ({cpus} CPUs), {per_run:?} per measurement."
    );
    println!("Other load on the machine moves these figures; compare rows of one run.\n");
    println!("Throughput (one process sends, the other receives)\n");
    println!("| transport | size | messages/s | bandwidth | vs pipe |");
    println!("|---|---:|---:|---:|---:|");
    let tput = |r: &Measured| r.messages as f64 / r.secs;
    for r in results.iter().filter(|r| r.mode == Mode::Throughput) {
        let pipe = results.iter().find(|p| {
            p.mode == Mode::Throughput && p.transport == Transport::Pipe && p.size == r.size
        });
        let ratio = pipe.map_or("-".into(), |p| format!("{:.1}x", tput(r) / tput(p)));
        println!(
            "| {} | {} | {} | {} | {} |",
            r.transport.label(),
            size_label(r.size),
            si(tput(r), "msg/s"),
            si(tput(r) * r.size as f64, "B/s"),
            ratio
        );
    }
    println!("\nRound trip (send; the other process sends it back)\n");
    println!("| transport | size | median | p99 | trips | vs pipe |");
    println!("|---|---:|---:|---:|---:|---:|");
    let pct = |r: &Measured, q: f64| {
        let v = &r.trips_ns;
        if v.is_empty() {
            0
        } else {
            v[((v.len() - 1) as f64 * q) as usize]
        }
    };
    for r in results.iter().filter(|r| r.mode == Mode::RoundTrip) {
        // The event wake-up compares with the smallest pipe round trip.
        let size = if r.transport == Transport::Event {
            results
                .iter()
                .filter(|p| p.mode == Mode::RoundTrip && p.transport == Transport::Pipe)
                .map(|p| p.size)
                .min()
                .unwrap_or(0)
        } else {
            r.size
        };
        let pipe = results.iter().find(|p| {
            p.mode == Mode::RoundTrip && p.transport == Transport::Pipe && p.size == size
        });
        let ratio = pipe.map_or("-".into(), |p| {
            format!("{:.1}x", pct(p, 0.5) as f64 / pct(r, 0.5).max(1) as f64)
        });
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.transport.label(),
            if r.transport == Transport::Event {
                "-".into()
            } else {
                size_label(r.size)
            },
            duration_label(pct(r, 0.5)),
            duration_label(pct(r, 0.99)),
            r.trips_ns.len(),
            ratio
        );
    }
    println!(
        "\n`vs pipe`: how many times the pipe's figure (faster when above 1x). Waits spin \
         briefly, then sleep on a futex (the default SpinPolicy)."
    );
}

/// How many messages to send between two clock reads.
fn batch(size: usize) -> u64 {
    ((1usize << 16) / size.max(1)).clamp(1, 1024) as u64
}

fn measure(job: Job, per_run: Duration) -> Result<Measured, String> {
    let deadline = per_run + PEER_GRACE;
    let mut m = Measured {
        transport: job.transport,
        size: job.size,
        mode: job.mode(),
        messages: 0,
        secs: 0.0,
        trips_ns: Vec::new(),
    };
    match job.measure {
        Measure::Throughput(open) => {
            (m.messages, m.secs) = throughput(open(job.size, deadline)?, job.size, per_run)?;
        }
        Measure::RoundTrip(open) => {
            m.trips_ns = round_trip(open(job.size, deadline)?, job.size, per_run)?;
            m.trips_ns.sort_unstable();
        }
    }
    Ok(m)
}

/// Stream `size`-byte messages for `per_run`; returns messages sent and seconds until the
/// peer had counted them all (checked against what was sent).
fn throughput(
    mut link: Box<dyn Link>,
    size: usize,
    per_run: Duration,
) -> Result<(u64, f64), String> {
    let msg = vec![0xA5u8; size];
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < per_run {
        for _ in 0..batch(size) {
            link.send(&msg)?;
        }
        sent += batch(size);
    }
    let (got, bytes) = link.finish()?;
    let secs = start.elapsed().as_secs_f64();
    if got != sent || bytes != sent * size as u64 {
        return Err(format!(
            "the peer received {got} messages ({bytes} bytes), {sent} of {size} bytes were sent"
        ));
    }
    link.close()?;
    Ok((sent, secs))
}

/// Send a `size`-byte message and wait for it to come back, for `per_run`; returns the
/// nanoseconds of each trip.
fn round_trip(mut link: Box<dyn Echo>, size: usize, per_run: Duration) -> Result<Vec<u64>, String> {
    let msg = vec![0xA5u8; size];
    let mut back = Vec::with_capacity(size);
    let mut trips_ns = Vec::new();
    let start = Instant::now();
    while start.elapsed() < per_run {
        let t0 = Instant::now();
        link.send(&msg)?;
        link.recv_into(&mut back)?;
        trips_ns.push(t0.elapsed().as_nanos() as u64);
        if back.len() != size {
            return Err(format!("echo of {} bytes, sent {size}", back.len()));
        }
    }
    let (echoed, _) = link.finish()?;
    if echoed != trips_ns.len() as u64 {
        return Err(format!(
            "the peer echoed {echoed} messages, {} round trips were timed",
            trips_ns.len()
        ));
    }
    link.close()?;
    Ok(trips_ns)
}

// ----------------------------------------------------------------------------------
// The transports, seen from the parent.

fn ring_err(e: shmkit_ring::Error) -> String {
    e.to_string()
}

/// The SPSC ring's producer; the peer holds the consumer (handed over serialized).
struct RingSink {
    tx: Producer,
    peer: Peer,
}

impl RingSink {
    fn open(_size: usize, deadline: Duration) -> Result<Box<dyn Link>, String> {
        let (tx, rx) = spsc::channel(&bench_name(), RING_CAPACITY).map_err(ring_err)?;
        let rx = rx.transfer();
        let wire = serde_json::to_string(&rx).map_err(|e| e.to_string())?;
        drop(rx);
        let mut peer = Peer::spawn("ring-sink", &wire, PeerIo::Control, deadline)?;
        peer.ready()?;
        Ok(Box::new(RingSink { tx, peer }))
    }
}

impl Link for RingSink {
    fn send(&mut self, msg: &[u8]) -> Result<(), String> {
        self.tx.send_timeout(msg, IO_TIMEOUT).map_err(ring_err)
    }

    fn finish(&mut self) -> Result<(u64, u64), String> {
        self.tx.send_timeout(&[], IO_TIMEOUT).map_err(ring_err)?;
        self.peer.result()
    }

    fn close(self: Box<Self>) -> Result<(), String> {
        self.peer.finish()
    }
}

/// Two SPSC rings: the producer of one and the consumer of the other; the peer holds
/// the opposite roles and sends each message back.
struct RingEcho {
    out: RingSink,
    rx: Consumer,
}

impl RingEcho {
    fn open(size: usize, deadline: Duration) -> Result<Box<dyn Echo>, String> {
        let cap = (2 * (size + 8)).next_power_of_two().max(4096);
        let (tx, prx) = spsc::channel(&bench_name(), cap).map_err(ring_err)?;
        let (ptx, rx) = spsc::channel(&bench_name(), cap).map_err(ring_err)?;
        let (prx, ptx) = (prx.transfer(), ptx.transfer());
        let wire = serde_json::to_string(&(&prx, &ptx)).map_err(|e| e.to_string())?;
        drop((prx, ptx));
        let mut peer = Peer::spawn("ring-echo", &wire, PeerIo::Control, deadline)?;
        peer.ready()?;
        Ok(Box::new(RingEcho {
            out: RingSink { tx, peer },
            rx,
        }))
    }
}

impl Link for RingEcho {
    fn send(&mut self, msg: &[u8]) -> Result<(), String> {
        self.out.send(msg)
    }

    fn finish(&mut self) -> Result<(u64, u64), String> {
        self.out.finish()
    }

    fn close(self: Box<Self>) -> Result<(), String> {
        self.out.peer.finish()
    }
}

impl Echo for RingEcho {
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<(), String> {
        self.rx.recv_into_timeout(buf, IO_TIMEOUT).map_err(ring_err)
    }
}

/// A `Queue<u64>` the peer opens by name; every message is the next count (never zero,
/// which ends the run), whatever bytes the mode passes.
struct QueueSink {
    q: Queue<u64>,
    next: u64,
    peer: Peer,
}

impl QueueSink {
    fn open(_size: usize, deadline: Duration) -> Result<Box<dyn Link>, String> {
        let name = bench_name();
        let q = Queue::<u64>::create(&name, RING_CAPACITY).map_err(ring_err)?;
        let mut peer = Peer::spawn("queue-sink", &name, PeerIo::Control, deadline)?;
        peer.ready()?;
        Ok(Box::new(QueueSink { q, next: 0, peer }))
    }
}

impl Link for QueueSink {
    fn send(&mut self, _msg: &[u8]) -> Result<(), String> {
        self.next += 1;
        self.q.put_timeout(&self.next, IO_TIMEOUT).map_err(ring_err)
    }

    fn finish(&mut self) -> Result<(u64, u64), String> {
        self.q.put_timeout(&0, IO_TIMEOUT).map_err(ring_err)?;
        self.peer.result()
    }

    fn close(self: Box<Self>) -> Result<(), String> {
        self.peer.finish()
    }
}

/// Three `Event`s: `ping` wakes the peer, which answers with `pong`; `stop` ends the
/// run. Messages are empty: this measures the wake-up alone.
struct EventEcho {
    ping: Event,
    pong: Event,
    stop: Event,
    peer: Peer,
}

fn sync_err(e: shmkit_sync::Error) -> String {
    e.to_string()
}

impl EventEcho {
    fn open(_size: usize, deadline: Duration) -> Result<Box<dyn Echo>, String> {
        let base = bench_name();
        let ping = Event::create(&format!("{base}-ping")).map_err(sync_err)?;
        let pong = Event::create(&format!("{base}-pong")).map_err(sync_err)?;
        let stop = Event::create(&format!("{base}-stop")).map_err(sync_err)?;
        let mut peer = Peer::spawn("event-echo", &base, PeerIo::Control, deadline)?;
        peer.ready()?;
        Ok(Box::new(EventEcho {
            ping,
            pong,
            stop,
            peer,
        }))
    }
}

impl Link for EventEcho {
    fn send(&mut self, _msg: &[u8]) -> Result<(), String> {
        self.ping.set();
        Ok(())
    }

    fn finish(&mut self) -> Result<(u64, u64), String> {
        self.stop.set();
        self.ping.set();
        self.peer.result()
    }

    fn close(self: Box<Self>) -> Result<(), String> {
        self.peer.finish()
    }
}

impl Echo for EventEcho {
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<(), String> {
        if !self.pong.wait_timeout(IO_TIMEOUT) {
            return Err("the bench peer did not answer the event".into());
        }
        self.pong.clear();
        buf.clear();
        Ok(())
    }
}

/// Frames over two pipes or one Unix socket pair: the peer's stdin and stdout.
struct StreamLink {
    peer: Peer,
    w: Writer,
    r: BufReader<Reader>,
    frame: Vec<u8>,
}

fn io_err(e: std::io::Error) -> String {
    format!("bench peer I/O: {e}")
}

impl StreamLink {
    fn pipe_sink(_size: usize, deadline: Duration) -> Result<Box<dyn Link>, String> {
        Ok(Box::new(StreamLink::open("stream-sink", false, deadline)?))
    }

    fn socket_sink(_size: usize, deadline: Duration) -> Result<Box<dyn Link>, String> {
        Ok(Box::new(StreamLink::open("stream-sink", true, deadline)?))
    }

    fn pipe_echo(_size: usize, deadline: Duration) -> Result<Box<dyn Echo>, String> {
        Ok(Box::new(StreamLink::open("stream-echo", false, deadline)?))
    }

    fn socket_echo(_size: usize, deadline: Duration) -> Result<Box<dyn Echo>, String> {
        Ok(Box::new(StreamLink::open("stream-echo", true, deadline)?))
    }

    /// A peer whose stdin/stdout are the transport: two pipes, or one socket.
    fn open(role: &str, socket: bool, deadline: Duration) -> Result<StreamLink, String> {
        let io = |e: std::io::Error| e.to_string();
        let (peer, w, r): (Peer, Writer, Reader) = if socket {
            let (mine, theirs) = UnixStream::pair().map_err(io)?;
            mine.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
            mine.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
            let peer = Peer::spawn(role, "-", PeerIo::Socket(theirs.into()), deadline)?;
            let r = mine.try_clone().map_err(io)?;
            (peer, Box::new(mine), Box::new(r))
        } else {
            let mut peer = Peer::spawn(role, "-", PeerIo::Pipes, deadline)?;
            let w = peer.input.take().ok_or("no pipe to the peer")?;
            let r = peer.control.take().ok_or("no pipe from the peer")?;
            (peer, w, r)
        };
        let mut r = BufReader::with_capacity(frame::BUF_CAPACITY, r);
        let mut b = [0u8; 1];
        r.read_exact(&mut b)
            .map_err(|e| format!("the bench peer went away: {e}"))?;
        if b[0] != b'R' {
            return Err("the bench peer did not say ready".into());
        }
        Ok(StreamLink {
            peer,
            w,
            r,
            frame: Vec::new(),
        })
    }
}

impl Link for StreamLink {
    fn send(&mut self, msg: &[u8]) -> Result<(), String> {
        frame::write(&mut self.w, &mut self.frame, msg).map_err(io_err)
    }

    fn finish(&mut self) -> Result<(u64, u64), String> {
        frame::write_control(&mut self.w, 0).map_err(io_err)?;
        let mut b = [0u8; 16];
        self.r.read_exact(&mut b).map_err(io_err)?;
        Ok(decode_result(&b))
    }

    fn close(self: Box<Self>) -> Result<(), String> {
        let StreamLink { peer, w, r, .. } = *self;
        drop((w, r));
        peer.finish()
    }
}

impl Echo for StreamLink {
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<(), String> {
        let len = frame::read_len(&mut self.r).map_err(io_err)?;
        if len as usize > MAX_SIZE {
            return Err(format!("the bench peer echoed a frame of {len} bytes"));
        }
        frame::read_payload(&mut self.r, len, buf).map_err(io_err)
    }
}

// ----------------------------------------------------------------------------------
// The peer process, seen from the parent.

type Reader = Box<dyn Read + Send>;
type Writer = Box<dyn Write + Send>;

/// A peer process with a watchdog that owns it: the watchdog kills it if it outlives
/// its deadline, and reaps it in every case.
struct Peer {
    control: Option<Reader>,
    input: Option<Writer>,
    /// Set on error paths: the watchdog kills the peer at once.
    abort: Arc<(Mutex<bool>, Condvar)>,
    watchdog: Option<JoinHandle<std::io::Result<std::process::ExitStatus>>>,
}

enum PeerIo {
    /// stdout is a control pipe (ready byte, result); stdin is unused.
    Control,
    /// stdin and stdout are two pipes: the transport.
    Pipes,
    /// stdin and stdout are one end of a socket pair; the parent gets the other end.
    Socket(OwnedFd),
}

fn bench_name() -> String {
    static NEXT: Mutex<u32> = Mutex::new(0);
    let mut n = NEXT.lock().unwrap_or_else(|p| p.into_inner());
    *n += 1;
    format!("shmkit-bench-{}-{}", std::process::id(), *n)
}

impl Peer {
    fn spawn(role: &str, arg: &str, io: PeerIo, deadline: Duration) -> Result<Peer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("bench-peer").arg(role).arg(arg);
        cmd.stderr(Stdio::inherit());
        match &io {
            PeerIo::Control => {
                cmd.stdin(Stdio::null()).stdout(Stdio::piped());
            }
            PeerIo::Pipes => {
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            }
            PeerIo::Socket(fd) => {
                let a = fd.try_clone().map_err(|e| e.to_string())?;
                let b = fd.try_clone().map_err(|e| e.to_string())?;
                cmd.stdin(Stdio::from(a)).stdout(Stdio::from(b));
            }
        }
        let mut child: Child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the bench peer: {e}"))?;
        let (control, input): (Option<Reader>, Option<Writer>) = match io {
            PeerIo::Control => (child.stdout.take().map(|s| Box::new(s) as _), None),
            PeerIo::Pipes => (
                child.stdout.take().map(|s| Box::new(s) as _),
                child.stdin.take().map(|s| Box::new(s) as _),
            ),
            PeerIo::Socket(_) => (None, None),
        };
        let abort = Arc::new((Mutex::new(false), Condvar::new()));
        let a = Arc::clone(&abort);
        let watchdog = std::thread::spawn(move || {
            let start = Instant::now();
            let (lock, cv) = &*a;
            let mut aborted = lock.lock().unwrap_or_else(|p| p.into_inner());
            // Reap the peer as soon as it exits; kill it when the parent gave up on it
            // or it outlived its deadline (its pipes then read EOF).
            while !*aborted && start.elapsed() < deadline {
                if let Some(status) = child.try_wait()? {
                    return Ok(status);
                }
                aborted = cv
                    .wait_timeout(aborted, Duration::from_millis(5))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            drop(aborted);
            let _ = child.kill();
            child.wait()
        });
        Ok(Peer {
            control,
            input,
            abort,
            watchdog: Some(watchdog),
        })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let r = self.control.as_mut().ok_or("no control channel")?;
        r.read_exact(buf)
            .map_err(|e| format!("the bench peer went away: {e}"))
    }

    /// Wait for the peer's ready byte.
    fn ready(&mut self) -> Result<(), String> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        if b[0] != b'R' {
            return Err(format!("the bench peer said {:?}, not ready", b[0]));
        }
        Ok(())
    }

    /// The peer's 16-byte result: messages and bytes received.
    fn result(&mut self) -> Result<(u64, u64), String> {
        let mut b = [0u8; 16];
        self.read_exact(&mut b)?;
        Ok(decode_result(&b))
    }

    /// Wait (bounded by the watchdog's deadline) for the peer to exit, and reap it.
    fn finish(mut self) -> Result<(), String> {
        drop(self.input.take());
        drop(self.control.take());
        match self.watchdog.take().map(JoinHandle::join) {
            Some(Ok(Ok(status))) if status.success() => Ok(()),
            Some(Ok(Ok(status))) => Err(format!("the bench peer failed ({status})")),
            _ => Err("could not reap the bench peer".into()),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Only reached with the watchdog still running on an error path: kill and reap.
        drop(self.input.take());
        drop(self.control.take());
        if let Some(w) = self.watchdog.take() {
            let (lock, cv) = &*self.abort;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cv.notify_all();
            let _ = w.join();
        }
    }
}

fn encode_result(messages: u64, bytes: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&messages.to_le_bytes());
    b[8..].copy_from_slice(&bytes.to_le_bytes());
    b
}

fn decode_result(b: &[u8; 16]) -> (u64, u64) {
    let mut m = [0u8; 8];
    let mut n = [0u8; 8];
    m.copy_from_slice(&b[..8]);
    n.copy_from_slice(&b[8..]);
    (u64::from_le_bytes(m), u64::from_le_bytes(n))
}

// ----------------------------------------------------------------------------------
// The peer process itself (`shmkit bench-peer ROLE ARG`).

fn own_stdio() -> Result<(File, File), String> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|e| e.to_string())
    };
    Ok((
        dup(std::io::stdin().as_fd())?,
        dup(std::io::stdout().as_fd())?,
    ))
}

/// Run one peer role; the process exits 0 on success.
pub(crate) fn peer(role: &str, arg: &str) -> Result<(), String> {
    let (input, mut out) = own_stdio()?;
    let (messages, bytes) = match role {
        "ring-sink" => ring_sink(arg, &mut out)?,
        "ring-echo" => ring_echo(arg, &mut out)?,
        "queue-sink" => queue_sink(arg, &mut out)?,
        "event-echo" => event_echo(arg, &mut out)?,
        "stream-sink" => stream_peer(input, &mut out, false)?,
        "stream-echo" => stream_peer(input, &mut out, true)?,
        other => return Err(format!("unknown bench peer role '{other}'")),
    };
    out.write_all(&encode_result(messages, bytes))
        .map_err(io_err)
}

/// Tell the parent this peer holds its end of the transport.
fn say_ready(out: &mut File) -> Result<(), String> {
    out.write_all(b"R").map_err(io_err)
}

fn ring_sink(wire: &str, out: &mut File) -> Result<(u64, u64), String> {
    let mut rx: Consumer = serde_json::from_str(wire).map_err(|e| e.to_string())?;
    say_ready(out)?;
    let (mut n, mut bytes, mut buf) = (0u64, 0u64, Vec::new());
    loop {
        rx.recv_into_timeout(&mut buf, IO_TIMEOUT)
            .map_err(ring_err)?;
        if buf.is_empty() {
            return Ok((n, bytes));
        }
        n += 1;
        bytes += buf.len() as u64;
    }
}

fn ring_echo(wire: &str, out: &mut File) -> Result<(u64, u64), String> {
    let (mut rx, mut tx): (Consumer, Producer) =
        serde_json::from_str(wire).map_err(|e| e.to_string())?;
    say_ready(out)?;
    let (mut n, mut buf) = (0u64, Vec::new());
    loop {
        rx.recv_into_timeout(&mut buf, IO_TIMEOUT)
            .map_err(ring_err)?;
        if buf.is_empty() {
            return Ok((n, 0));
        }
        tx.send_timeout(&buf, IO_TIMEOUT).map_err(ring_err)?;
        n += 1;
    }
}

fn queue_sink(name: &str, out: &mut File) -> Result<(u64, u64), String> {
    let q = Queue::<u64>::open(name).map_err(ring_err)?;
    say_ready(out)?;
    let mut n = 0u64;
    while q.get_timeout(IO_TIMEOUT).map_err(ring_err)? != 0 {
        n += 1;
    }
    Ok((n, n * 8))
}

fn event_echo(base: &str, out: &mut File) -> Result<(u64, u64), String> {
    let ping = Event::open(&format!("{base}-ping")).map_err(sync_err)?;
    let pong = Event::open(&format!("{base}-pong")).map_err(sync_err)?;
    let stop = Event::open(&format!("{base}-stop")).map_err(sync_err)?;
    say_ready(out)?;
    let mut n = 0u64;
    loop {
        if !ping.wait_timeout(IO_TIMEOUT) {
            return Err("no ping within the timeout".into());
        }
        if stop.is_set() {
            return Ok((n, 0));
        }
        ping.clear();
        pong.set();
        n += 1;
    }
}

/// Read frames from stdin until a zero length; with `echo`, write each one back.
fn stream_peer(input: File, out: &mut File, echo: bool) -> Result<(u64, u64), String> {
    let mut r = BufReader::with_capacity(frame::BUF_CAPACITY, input);
    say_ready(out)?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        let len = frame::read_len(&mut r).map_err(io_err)?;
        if len == 0 {
            return Ok((n, bytes));
        }
        if len as usize > MAX_SIZE {
            return Err(format!("frame of {len} bytes"));
        }
        if echo {
            frame::read_whole(&mut r, len, &mut buf).map_err(io_err)?;
            out.write_all(&buf).map_err(io_err)?;
        } else {
            frame::read_payload(&mut r, len, &mut buf).map_err(io_err)?;
        }
        n += 1;
        bytes += u64::from(len);
    }
}

// The format's tests live with the binary's unit tests: benches include frame.rs by
// path, and their harness-less builds would leave a test module there unused.
#[cfg(test)]
mod frame_tests {
    use std::io;

    use crate::frame::{read_len, read_payload, read_whole, write, write_control};

    #[test]
    fn frames_round_trip_through_a_byte_stream() {
        let mut wire = Vec::new();
        let mut frame = Vec::new();
        write(&mut wire, &mut frame, b"hello").unwrap();
        write(&mut wire, &mut frame, b"").unwrap();
        write_control(&mut wire, u32::MAX).unwrap();
        assert_eq!(&wire[..9], b"\x05\0\0\0hello");

        let mut r = &wire[..];
        let mut buf = Vec::new();
        for payload in [&b"hello"[..], b""] {
            let len = read_len(&mut r).unwrap();
            assert_eq!(len as usize, payload.len());
            read_payload(&mut r, len, &mut buf).unwrap();
            assert_eq!(buf, payload);
        }
        assert_eq!(read_len(&mut r).unwrap(), u32::MAX);
        assert!(r.is_empty());
        let err = read_len(&mut r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_echo_writes_back_the_frame_it_read() {
        let mut wire = Vec::new();
        write(&mut wire, &mut Vec::new(), b"ping").unwrap();
        let mut r = &wire[..];
        let len = read_len(&mut r).unwrap();
        let mut frame = Vec::new();
        read_whole(&mut r, len, &mut frame).unwrap();
        assert_eq!(frame, wire);
        // A payload cut short is an error, not a short frame.
        let mut cut = &wire[..6];
        let len = read_len(&mut cut).unwrap();
        assert!(read_payload(&mut cut, len, &mut Vec::new()).is_err());
    }
}
