//! Baseline transports every shmkit bench compares against: length-prefixed frames
//! over an OS pipe, and over a Unix stream socket, between this process and a child.
//!
//! The child is this same bench binary, re-executed with `SHMKIT_BENCH_ROLE` set; a
//! bench's `main` calls [`dispatch_child_role`] before anything else, so the child runs
//! only the baseline role and exits. The child's stdin and stdout are the transport, so
//! no descriptor bookkeeping is needed and the child sees EOF (and exits) when the
//! parent goes away.
//!
//! Frames are those of [`frame`] (`crates/shmkit-cli/src/frame.rs`, shared by path with
//! `shmkit bench` and `benches/peers`): `u32` little-endian length + payload, written with
//! one `write_all` of a reused buffer, and read through a 64 KiB `BufReader` — the way a
//! careful pipe user would write it, so the baseline is not a straw man. A length of
//! `u32::MAX` is a sync frame: the sink answers it with one byte, which is how a
//! throughput measurement knows every byte arrived.
#![allow(dead_code)] // each bench binary uses a different part of this module

/// Length-prefixed frames: the one definition of the format.
#[path = "../../crates/shmkit-cli/src/frame.rs"]
pub mod frame;
pub mod shm;

use std::io::{BufReader, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

const ROLE_ENV: &str = "SHMKIT_BENCH_ROLE";
const SYNC: u32 = u32::MAX;

/// Which OS transport carries the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Two anonymous pipes (the child's stdin and stdout).
    Pipe,
    /// One Unix stream socket pair (the child's stdin and stdout are the same socket).
    UnixSocket,
}

/// What the child does with the frames it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Read frames and drop them; answer sync frames with one byte.
    Sink,
    /// Send every frame straight back.
    Echo,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Sink => "sink",
            Role::Echo => "echo",
        }
    }
}

/// Call first thing in a bench's `main`: if this process is a baseline child, run its
/// role and exit; otherwise return and let criterion run.
pub fn dispatch_child_role() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    // SAFETY: nothing else in this freshly started child has touched the environment.
    unsafe { std::env::remove_var(ROLE_ENV) };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    let result = match role.as_str() {
        "sink" => run_sink(stdin, stdout),
        "echo" => run_echo(stdin, stdout),
        "square" => run_square(stdin, stdout),
        other => panic!("unknown bench role {other:?}"),
    };
    // EOF from the parent is the normal end; anything else is a bench bug worth seeing.
    if let Err(e) = result
        && e.kind() != std::io::ErrorKind::UnexpectedEof
    {
        eprintln!("bench child ({role}) failed: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn run_sink(stdin: impl Read, mut stdout: impl Write) -> std::io::Result<()> {
    let mut r = BufReader::with_capacity(frame::BUF_CAPACITY, stdin);
    let mut buf = Vec::new();
    loop {
        let len = frame::read_len(&mut r)?;
        if len == SYNC {
            stdout.write_all(&[1])?;
            stdout.flush()?;
            continue;
        }
        frame::read_payload(&mut r, len, &mut buf)?;
        std::hint::black_box(&buf);
    }
}

fn run_echo(stdin: impl Read, stdout: impl Write) -> std::io::Result<()> {
    let mut r = BufReader::with_capacity(frame::BUF_CAPACITY, stdin);
    let mut w = BufWriter::with_capacity(frame::BUF_CAPACITY, stdout);
    let mut buf = Vec::new();
    loop {
        let len = frame::read_len(&mut r)?;
        frame::read_whole(&mut r, len, &mut buf)?;
        w.write_all(&buf)?;
        w.flush()?;
    }
}

/// The pipe pool's worker: each frame is a chunk of `u64` (little-endian); the answer is
/// one frame of their squares.
fn run_square(mut stdin: impl Read, mut stdout: impl Write) -> std::io::Result<()> {
    let (mut buf, mut out, mut reply) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let len = frame::read_len(&mut stdin)?;
        frame::read_payload(&mut stdin, len, &mut buf)?;
        out.clear();
        for x in buf.chunks_exact(8) {
            let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
            out.extend_from_slice(&x.wrapping_mul(x).to_le_bytes());
        }
        frame::write(&mut stdout, &mut reply, &out)?;
        stdout.flush()?;
    }
}

/// The baseline for `shmkit-pool`: a pool whose tasks and results travel over pipes,
/// built the way one would without shmkit — one child per worker (this bench binary,
/// re-executed), a request and a reply pipe each, at most `window` chunks in flight per
/// worker, `poll` on the reply pipes. It only squares `u64`s (raw little-endian, no
/// serialization at all), which favours it.
pub struct PipePool {
    workers: Vec<(Child, ChildStdin, ChildStdout)>,
}

impl PipePool {
    /// Start `n` square workers.
    pub fn spawn(n: usize) -> PipePool {
        let exe = std::env::current_exe().expect("current_exe");
        let workers = (0..n)
            .map(|_| {
                let mut child = Command::new(&exe)
                    .env(ROLE_ENV, "square")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("spawn pipe pool worker");
                let tx = child.stdin.take().expect("piped stdin");
                let rx = child.stdout.take().expect("piped stdout");
                (child, tx, rx)
            })
            .collect();
        PipePool { workers }
    }

    /// The squares of `items`, in order, computed by the workers in chunks.
    pub fn map_squares(&mut self, items: &[u64], chunksize: usize, window: usize) -> Vec<u64> {
        use rustix::event::{PollFd, PollFlags, poll};
        use std::collections::VecDeque;
        let chunks: Vec<&[u64]> = items.chunks(chunksize.max(1)).collect();
        let mut out = vec![0u64; items.len()];
        let mut in_flight: Vec<VecDeque<usize>> = vec![VecDeque::new(); self.workers.len()];
        let (mut next, mut done) = (0, 0);
        let (mut payload, mut wire) = (Vec::new(), Vec::new());
        let mut reply = Vec::new();
        while done < chunks.len() {
            for (w, (_, tx, _)) in self.workers.iter_mut().enumerate() {
                while in_flight[w].len() < window && next < chunks.len() {
                    payload.clear();
                    for x in chunks[next] {
                        payload.extend_from_slice(&x.to_le_bytes());
                    }
                    frame::write(tx, &mut wire, &payload).expect("pipe pool send");
                    in_flight[w].push_back(next);
                    next += 1;
                }
            }
            let busy: Vec<usize> = (0..self.workers.len())
                .filter(|&w| !in_flight[w].is_empty())
                .collect();
            let mut fds: Vec<PollFd<'_>> = busy
                .iter()
                .map(|&w| PollFd::new(&self.workers[w].2, PollFlags::IN))
                .collect();
            poll(&mut fds, None).expect("poll");
            let ready: Vec<usize> = busy
                .iter()
                .zip(&fds)
                .filter(|(_, fd)| !fd.revents().is_empty())
                .map(|(&w, _)| w)
                .collect();
            drop(fds);
            for w in ready {
                let rx = &mut self.workers[w].2;
                let len = frame::read_len(rx).expect("pipe pool reply header");
                frame::read_payload(rx, len, &mut reply).expect("pipe pool reply");
                let idx = in_flight[w].pop_front().expect("a chunk in flight");
                let base = idx * chunksize.max(1);
                for (k, v) in reply.chunks_exact(8).enumerate() {
                    out[base + k] = u64::from_le_bytes(v.try_into().expect("8 bytes"));
                }
                done += 1;
            }
        }
        out
    }
}

impl Drop for PipePool {
    fn drop(&mut self) {
        for (mut child, tx, rx) in self.workers.drain(..) {
            drop((tx, rx)); // EOF: the worker exits
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process at the other end of a pipe or Unix socket, speaking frames.
pub struct Baseline {
    child: Child,
    tx: Box<dyn Write>,
    rx: Box<dyn Read>,
    frame: Vec<u8>,
}

impl Baseline {
    /// Start a child of this bench binary playing `role` over `transport`.
    pub fn spawn(transport: Transport, role: Role) -> Baseline {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(exe);
        cmd.env(ROLE_ENV, role.as_str()).stderr(Stdio::inherit());
        match transport {
            Transport::Pipe => {
                cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
                let mut child = cmd.spawn().expect("spawn pipe baseline child");
                let tx: ChildStdin = child.stdin.take().expect("piped stdin");
                let rx: ChildStdout = child.stdout.take().expect("piped stdout");
                Baseline {
                    child,
                    tx: Box::new(tx),
                    rx: Box::new(rx),
                    frame: Vec::new(),
                }
            }
            Transport::UnixSocket => {
                let (ours, theirs) = UnixStream::pair().expect("socketpair");
                let theirs_out: OwnedFd = theirs.try_clone().expect("dup socket").into();
                let theirs_in: OwnedFd = theirs.into();
                cmd.stdin(Stdio::from(theirs_in))
                    .stdout(Stdio::from(theirs_out));
                let child = cmd.spawn().expect("spawn unix-socket baseline child");
                let rx = ours.try_clone().expect("dup socket");
                Baseline {
                    child,
                    tx: Box::new(ours),
                    rx: Box::new(rx),
                    frame: Vec::new(),
                }
            }
        }
    }

    /// Send one frame (header and payload in one write where the transport allows).
    pub fn send(&mut self, payload: &[u8]) {
        frame::write(&mut self.tx, &mut self.frame, payload).expect("baseline send");
    }

    /// Wait until the sink has read every frame sent so far.
    pub fn sync(&mut self) {
        frame::write_control(&mut self.tx, SYNC).expect("baseline sync");
        let mut ack = [0u8; 1];
        self.rx.read_exact(&mut ack).expect("baseline ack");
    }

    /// Send `iters` frames of `payload`, then [`sync`](Self::sync): the time it took
    /// (a criterion `iter_custom` body for throughput).
    pub fn stream(&mut self, iters: u64, payload: &[u8]) -> Duration {
        let t0 = std::time::Instant::now();
        for _ in 0..iters {
            self.send(payload);
        }
        self.sync();
        t0.elapsed()
    }

    /// Receive one frame into `buf` (for the echo role).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) {
        let len = frame::read_len(&mut self.rx).expect("baseline recv header");
        frame::read_payload(&mut self.rx, len, buf).expect("baseline recv payload");
    }

    /// One round trip through an echo child.
    pub fn round_trip(&mut self, payload: &[u8], buf: &mut Vec<u8>) {
        self.send(payload);
        self.recv_into(buf);
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        // Closing our end gives the child EOF; it exits on its own. Reap it, bounded:
        // a child that does not leave within 5 s is killed rather than waited on.
        self.tx = Box::new(std::io::sink());
        self.rx = Box::new(std::io::empty());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

/// Human-readable size label used in bench ids: `8B`, `64KiB`, `1MiB`.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}
