//! `shmkit bench`: shared-memory transports against an OS pipe and a Unix socket, two
//! processes on this machine, printed as two tables (throughput and round trip).
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
//! Frames on pipes and sockets are a `u32` little-endian length and the payload, written
//! with one `write_all` (one syscall per message, as a careful pipe user writes them) and
//! read through a 64 KiB buffer. A zero-length message (a zero item for the queue, the
//! stop event for events) ends a run; a sink then answers with 16 bytes: messages and
//! bytes it received, which the parent checks.

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

/// Longest any single blocking call waits for the peer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past its measurement a peer may live before the watchdog kills it.
const PEER_GRACE: Duration = Duration::from_secs(15);
/// Data area of the throughput ring.
const RING_CAPACITY: usize = 1 << 20;

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

struct Job {
    mode: Mode,
    transport: Transport,
    size: usize,
}

struct Measured {
    job: Job,
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
    let mut v = Vec::new();
    for &size in sizes {
        for t in [Transport::SpscRing, Transport::Pipe, Transport::UnixSocket] {
            v.push(Job {
                mode: Mode::Throughput,
                transport: t,
                size,
            });
        }
    }
    v.push(Job {
        mode: Mode::Throughput,
        transport: Transport::QueueU64,
        size: 8,
    });
    for &size in sizes {
        for t in [Transport::SpscRing, Transport::Pipe, Transport::UnixSocket] {
            v.push(Job {
                mode: Mode::RoundTrip,
                transport: t,
                size,
            });
        }
    }
    v.push(Job {
        mode: Mode::RoundTrip,
        transport: Transport::Event,
        size: 0,
    });
    v
}

/// `shmkit bench`. `per_run`: how long each measurement runs.
pub fn run(
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
    if let Some(&s) = sizes.iter().find(|&&s| s == 0 || s > 1 << 20) {
        return Err(format!("message size {s} is not in 1..=1048576"));
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
            match job.mode {
                Mode::Throughput => "throughput",
                Mode::RoundTrip => "round trip",
            },
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
    for r in results.iter().filter(|r| r.job.mode == Mode::Throughput) {
        let pipe = results.iter().find(|p| {
            p.job.mode == Mode::Throughput
                && p.job.transport == Transport::Pipe
                && p.job.size == r.job.size
        });
        let ratio = pipe.map_or("-".into(), |p| format!("{:.1}x", tput(r) / tput(p)));
        println!(
            "| {} | {} | {} | {} | {} |",
            r.job.transport.label(),
            size_label(r.job.size),
            si(tput(r), "msg/s"),
            si(tput(r) * r.job.size as f64, "B/s"),
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
    for r in results.iter().filter(|r| r.job.mode == Mode::RoundTrip) {
        // The event wake-up compares with the smallest pipe round trip.
        let size = if r.job.transport == Transport::Event {
            results
                .iter()
                .filter(|p| p.job.mode == Mode::RoundTrip && p.job.transport == Transport::Pipe)
                .map(|p| p.job.size)
                .min()
                .unwrap_or(0)
        } else {
            r.job.size
        };
        let pipe = results.iter().find(|p| {
            p.job.mode == Mode::RoundTrip
                && p.job.transport == Transport::Pipe
                && p.job.size == size
        });
        let ratio = pipe.map_or("-".into(), |p| {
            format!("{:.1}x", pct(p, 0.5) as f64 / pct(r, 0.5).max(1) as f64)
        });
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.job.transport.label(),
            if r.job.transport == Transport::Event {
                "-".into()
            } else {
                size_label(r.job.size)
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

// ----------------------------------------------------------------------------------
// The peer process, seen from the parent.

/// A peer process with a watchdog that owns it: the watchdog kills it if it outlives
/// its deadline, and reaps it in every case.
type Reader = Box<dyn Read + Send>;
type Writer = Box<dyn Write + Send>;

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

/// How many messages to send between two clock reads.
fn batch(size: usize) -> u64 {
    ((1usize << 16) / size.max(1)).clamp(1, 1024) as u64
}

fn measure(job: Job, per_run: Duration) -> Result<Measured, String> {
    let deadline = per_run + PEER_GRACE;
    let e = |e: shmkit_ring::Error| e.to_string();
    let mut m = Measured {
        job,
        messages: 0,
        secs: 0.0,
        trips_ns: Vec::new(),
    };
    let size = m.job.size;
    let msg = vec![0xA5u8; size];
    match (m.job.mode, m.job.transport) {
        (Mode::Throughput, Transport::SpscRing) => {
            let name = bench_name();
            let (mut tx, rx) = spsc::channel(&name, RING_CAPACITY).map_err(e)?;
            let rx = rx.transfer();
            let wire = serde_json::to_string(&rx).map_err(|e| e.to_string())?;
            drop(rx);
            let mut peer = Peer::spawn("ring-sink", &wire, PeerIo::Control, deadline)?;
            peer.ready()?;
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < per_run {
                for _ in 0..batch(size) {
                    tx.send_timeout(&msg, IO_TIMEOUT).map_err(e)?;
                }
                sent += batch(size);
            }
            tx.send_timeout(&[], IO_TIMEOUT).map_err(e)?;
            let (got, bytes) = peer.result()?;
            m.secs = start.elapsed().as_secs_f64();
            check(got, bytes, sent, size)?;
            m.messages = sent;
            peer.finish()?;
        }
        (Mode::Throughput, Transport::QueueU64) => {
            let name = bench_name();
            let q = Queue::<u64>::create(&name, RING_CAPACITY).map_err(e)?;
            let mut peer = Peer::spawn("queue-sink", &name, PeerIo::Control, deadline)?;
            peer.ready()?;
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < per_run {
                for _ in 0..256 {
                    sent += 1;
                    q.put_timeout(&sent, IO_TIMEOUT).map_err(e)?;
                }
            }
            q.put_timeout(&0, IO_TIMEOUT).map_err(e)?;
            let (got, bytes) = peer.result()?;
            m.secs = start.elapsed().as_secs_f64();
            check(got, bytes, sent, 8)?;
            m.messages = sent;
            peer.finish()?;
        }
        (Mode::Throughput, t @ (Transport::Pipe | Transport::UnixSocket)) => {
            let (peer, mut w, mut r) = stream_peer("stream-sink", t, deadline)?;
            wait_ready(&mut r)?;
            let mut frame = (size as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(&msg);
            let start = Instant::now();
            let mut sent = 0u64;
            let io = |e: std::io::Error| format!("writing to the bench peer: {e}");
            while start.elapsed() < per_run {
                for _ in 0..batch(size) {
                    w.write_all(&frame).map_err(io)?;
                }
                sent += batch(size);
            }
            w.write_all(&0u32.to_le_bytes()).map_err(io)?;
            let mut b = [0u8; 16];
            r.read_exact(&mut b)
                .map_err(|e| format!("the bench peer went away: {e}"))?;
            let (got, bytes) = decode_result(&b);
            m.secs = start.elapsed().as_secs_f64();
            check(got, bytes, sent, size)?;
            m.messages = sent;
            drop((w, r));
            peer.finish()?;
        }
        (Mode::RoundTrip, Transport::SpscRing) => {
            let cap = (2 * (size + 8)).next_power_of_two().max(4096);
            let (ping, pong) = (bench_name(), bench_name());
            let (mut tx, prx) = spsc::channel(&ping, cap).map_err(e)?;
            let (ptx, mut rx) = spsc::channel(&pong, cap).map_err(e)?;
            let (prx, ptx) = (prx.transfer(), ptx.transfer());
            let wire = serde_json::to_string(&(&prx, &ptx)).map_err(|e| e.to_string())?;
            drop((prx, ptx));
            let mut peer = Peer::spawn("ring-echo", &wire, PeerIo::Control, deadline)?;
            peer.ready()?;
            let mut buf = Vec::with_capacity(size);
            let start = Instant::now();
            while start.elapsed() < per_run {
                let t0 = Instant::now();
                tx.send_timeout(&msg, IO_TIMEOUT).map_err(e)?;
                rx.recv_timeout(&mut buf, IO_TIMEOUT).map_err(e)?;
                m.trips_ns.push(t0.elapsed().as_nanos() as u64);
                if buf.len() != size {
                    return Err(format!("echo of {} bytes, sent {size}", buf.len()));
                }
            }
            tx.send_timeout(&[], IO_TIMEOUT).map_err(e)?;
            peer.result()?;
            peer.finish()?;
        }
        (Mode::RoundTrip, t @ (Transport::Pipe | Transport::UnixSocket)) => {
            let (peer, mut w, mut r) = stream_peer("stream-echo", t, deadline)?;
            wait_ready(&mut r)?;
            let mut frame = (size as u32).to_le_bytes().to_vec();
            frame.extend_from_slice(&msg);
            let mut back = vec![0u8; size];
            let io = |e: std::io::Error| format!("bench peer I/O: {e}");
            let start = Instant::now();
            while start.elapsed() < per_run {
                let t0 = Instant::now();
                w.write_all(&frame).map_err(io)?;
                let mut len = [0u8; 4];
                r.read_exact(&mut len).map_err(io)?;
                if u32::from_le_bytes(len) as usize != size {
                    return Err("the bench peer echoed a different length".into());
                }
                r.read_exact(&mut back).map_err(io)?;
                m.trips_ns.push(t0.elapsed().as_nanos() as u64);
            }
            w.write_all(&0u32.to_le_bytes()).map_err(io)?;
            let mut b = [0u8; 16];
            r.read_exact(&mut b).map_err(io)?;
            drop((w, r));
            peer.finish()?;
        }
        (Mode::RoundTrip, Transport::Event) => {
            let base = bench_name();
            let se = |e: shmkit_sync::Error| e.to_string();
            let ping = Event::create(&format!("{base}-ping")).map_err(se)?;
            let pong = Event::create(&format!("{base}-pong")).map_err(se)?;
            let stop = Event::create(&format!("{base}-stop")).map_err(se)?;
            let mut peer = Peer::spawn("event-echo", &base, PeerIo::Control, deadline)?;
            peer.ready()?;
            let start = Instant::now();
            while start.elapsed() < per_run {
                let t0 = Instant::now();
                ping.set();
                if !pong.wait_timeout(IO_TIMEOUT) {
                    return Err("the bench peer did not answer the event".into());
                }
                pong.clear();
                m.trips_ns.push(t0.elapsed().as_nanos() as u64);
            }
            stop.set();
            ping.set();
            peer.result()?;
            peer.finish()?;
        }
        (mode, t) => return Err(format!("no {mode:?} measurement for {t:?}")),
    }
    m.trips_ns.sort_unstable();
    Ok(m)
}

fn check(got: u64, bytes: u64, sent: u64, size: usize) -> Result<(), String> {
    if got != sent || bytes != sent * size as u64 {
        return Err(format!(
            "the peer received {got} messages ({bytes} bytes), {sent} of {size} bytes were sent"
        ));
    }
    Ok(())
}

type StreamPeer = (Peer, Writer, BufReader<Reader>);

/// A peer whose stdin/stdout are the transport: two pipes, or one socket.
fn stream_peer(role: &str, t: Transport, deadline: Duration) -> Result<StreamPeer, String> {
    let io = |e: std::io::Error| e.to_string();
    match t {
        Transport::Pipe => {
            let mut peer = Peer::spawn(role, "-", PeerIo::Pipes, deadline)?;
            let w = peer.input.take().ok_or("no pipe to the peer")?;
            let r = peer.control.take().ok_or("no pipe from the peer")?;
            Ok((peer, w, BufReader::with_capacity(1 << 16, r)))
        }
        _ => {
            let (mine, theirs) = UnixStream::pair().map_err(io)?;
            mine.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
            mine.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
            let peer = Peer::spawn(role, "-", PeerIo::Socket(theirs.into()), deadline)?;
            let r = mine.try_clone().map_err(io)?;
            Ok((
                peer,
                Box::new(mine),
                BufReader::with_capacity(1 << 16, Box::new(r) as Reader),
            ))
        }
    }
}

fn wait_ready(r: &mut impl Read) -> Result<(), String> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)
        .map_err(|e| format!("the bench peer went away: {e}"))?;
    if b[0] != b'R' {
        return Err("the bench peer did not say ready".into());
    }
    Ok(())
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
pub fn peer(role: &str, arg: &str) -> Result<(), String> {
    let (input, mut out) = own_stdio()?;
    let io = |e: std::io::Error| e.to_string();
    let e = |e: shmkit_ring::Error| e.to_string();
    match role {
        "ring-sink" => {
            let mut rx: Consumer = serde_json::from_str(arg).map_err(|e| e.to_string())?;
            out.write_all(b"R").map_err(io)?;
            let (mut n, mut bytes, mut buf) = (0u64, 0u64, Vec::new());
            loop {
                rx.recv_timeout(&mut buf, IO_TIMEOUT).map_err(e)?;
                if buf.is_empty() {
                    break;
                }
                n += 1;
                bytes += buf.len() as u64;
            }
            out.write_all(&encode_result(n, bytes)).map_err(io)?;
        }
        "ring-echo" => {
            let (mut rx, mut tx): (Consumer, Producer) =
                serde_json::from_str(arg).map_err(|e| e.to_string())?;
            out.write_all(b"R").map_err(io)?;
            let (mut n, mut buf) = (0u64, Vec::new());
            loop {
                rx.recv_timeout(&mut buf, IO_TIMEOUT).map_err(e)?;
                if buf.is_empty() {
                    break;
                }
                tx.send_timeout(&buf, IO_TIMEOUT).map_err(e)?;
                n += 1;
            }
            out.write_all(&encode_result(n, 0)).map_err(io)?;
        }
        "queue-sink" => {
            let q = Queue::<u64>::open(arg).map_err(e)?;
            out.write_all(b"R").map_err(io)?;
            let mut n = 0u64;
            while q.get_timeout(IO_TIMEOUT).map_err(e)? != 0 {
                n += 1;
            }
            out.write_all(&encode_result(n, n * 8)).map_err(io)?;
        }
        "event-echo" => {
            let se = |e: shmkit_sync::Error| e.to_string();
            let ping = Event::open(&format!("{arg}-ping")).map_err(se)?;
            let pong = Event::open(&format!("{arg}-pong")).map_err(se)?;
            let stop = Event::open(&format!("{arg}-stop")).map_err(se)?;
            out.write_all(b"R").map_err(io)?;
            let mut n = 0u64;
            loop {
                if !ping.wait_timeout(IO_TIMEOUT) {
                    return Err("no ping within the timeout".into());
                }
                if stop.is_set() {
                    break;
                }
                ping.clear();
                pong.set();
                n += 1;
            }
            out.write_all(&encode_result(n, 0)).map_err(io)?;
        }
        "stream-sink" | "stream-echo" => {
            let echo = role == "stream-echo";
            let mut r = BufReader::with_capacity(1 << 16, input);
            out.write_all(b"R").map_err(io)?;
            let (mut n, mut bytes) = (0u64, 0u64);
            let mut frame = Vec::new();
            loop {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).map_err(io)?;
                let len = u32::from_le_bytes(len) as usize;
                if len == 0 {
                    break;
                }
                if len > 1 << 20 {
                    return Err(format!("frame of {len} bytes"));
                }
                frame.resize(4 + len, 0);
                frame[..4].copy_from_slice(&(len as u32).to_le_bytes());
                r.read_exact(&mut frame[4..]).map_err(io)?;
                if echo {
                    out.write_all(&frame).map_err(io)?;
                }
                n += 1;
                bytes += len as u64;
            }
            out.write_all(&encode_result(n, bytes)).map_err(io)?;
        }
        other => return Err(format!("unknown bench peer role '{other}'")),
    }
    Ok(())
}
