//! Async benches (issue 19): the awaited waits against their baselines, one child process
//! on the other side in every case (blocking, the same in every row).
//!
//! - `async_roundtrip_8b/{shmkit_pipe,tokio_unixstream,tokio_fifo}`: the parent awaits an
//!   8-byte message's echo: a shmkit `Pipe` (`Async<Connection>`), a tokio `UnixStream`,
//!   a pair of FIFOs read and written through tokio's `pipe` module;
//!   `shmkit_pipe_blocking` is the same pipe with the blocking calls, for comparison.
//! - `stream_8b/{async,blocking}/{64KiB,8MiB}`: messages of 8 bytes from a child producer
//!   through one SPSC ring of that capacity, received with `Async<Consumer>::recv` or
//!   `Consumer::recv` (target: the async receiver at least 0.8x the blocking one).
//! - `event_wakeup/{async,blocking}`: an `Event` ping-pong with a child; the parent's side
//!   awaited or blocking.
//!
//! Run: `cargo bench -p shmkit-async --bench async -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use shmkit_async::Async;
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Connection, Pipe};
use shmkit_sync::{Event, Handle};
use shmkit_testing::runtime::current_thread as runtime;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn echo_pipe(c: Connection) {
    let mut buf = Vec::new();
    while c.recv_bytes_into(&mut buf).is_ok() {
        if c.send_bytes(&buf).is_err() {
            return;
        }
    }
}

fn echo_socket(path: String) {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect");
    let mut b = [0u8; 8];
    while s.read_exact(&mut b).is_ok() {
        if s.write_all(&b).is_err() {
            return;
        }
    }
}

fn echo_fifo((to_child, to_parent): (String, String)) {
    // Read-write: opening never waits for the parent's reader (Linux FIFO semantics).
    let mut tx = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(to_parent)
        .expect("fifo out");
    let mut rx = std::fs::File::open(to_child).expect("fifo in");
    let mut b = [0u8; 8];
    while rx.read_exact(&mut b).is_ok() {
        if tx.write_all(&b).is_err() {
            return;
        }
    }
}

fn mkfifo(path: &str) {
    let c = std::ffi::CString::new(path).expect("path");
    // SAFETY: a valid NUL-terminated path.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo {path}");
}

fn roundtrip(c: &mut Criterion) {
    let mut g = c.benchmark_group("async_roundtrip_8b");
    let rt = runtime();
    let msg = 7u64.to_le_bytes();

    let (a, b) = Pipe::new().expect("pipe");
    let child = shmkit_process::spawn(echo_pipe, b.transfer()).expect("spawn");
    let a = Async::new(a);
    g.bench_function(BenchmarkId::new("shmkit_pipe", "8B"), |bn| {
        bn.iter_custom(|n| {
            rt.block_on(async {
                let mut buf = Vec::new();
                let t = Instant::now();
                for _ in 0..n {
                    a.send_bytes(&msg).await.expect("send");
                    a.recv_bytes_into(&mut buf).await.expect("recv");
                }
                t.elapsed()
            })
        })
    });
    let a = a.into_inner();
    g.bench_function(BenchmarkId::new("shmkit_pipe_blocking", "8B"), |bn| {
        let mut buf = Vec::new();
        bn.iter(|| {
            a.send_bytes(&msg).expect("send");
            a.recv_bytes_into(&mut buf).expect("recv");
        })
    });
    a.close();
    child.join().expect("echo child");

    let dir = std::env::temp_dir().join(format!("shmkit-bench-async-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock = dir.join("sock").to_string_lossy().into_owned();
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let child = shmkit_process::spawn(echo_socket, sock.clone()).expect("spawn");
    let (s, _) = listener.accept().expect("accept");
    s.set_nonblocking(true).expect("nonblocking");
    let mut s = rt
        .block_on(async { tokio::net::UnixStream::from_std(s) })
        .expect("tokio");
    g.bench_function(BenchmarkId::new("tokio_unixstream", "8B"), |bn| {
        bn.iter_custom(|n| {
            rt.block_on(async {
                let mut b = [0u8; 8];
                let t = Instant::now();
                for _ in 0..n {
                    s.write_all(&msg).await.expect("write");
                    s.read_exact(&mut b).await.expect("read");
                }
                t.elapsed()
            })
        })
    });
    drop(s);
    child.join().expect("socket child");

    let (down, up) = (
        dir.join("down").to_string_lossy().into_owned(),
        dir.join("up").to_string_lossy().into_owned(),
    );
    mkfifo(&down);
    mkfifo(&up);
    let child = shmkit_process::spawn(echo_fifo, (down.clone(), up.clone())).expect("spawn");
    let (mut tx, mut rx) = rt.block_on(async {
        use tokio::net::unix::pipe;
        // Opening a FIFO's write end fails until there is a reader: the child's.
        let tx = loop {
            match pipe::OpenOptions::new().open_sender(&down) {
                Ok(tx) => break tx,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        let rx = pipe::OpenOptions::new()
            .open_receiver(&up)
            .expect("fifo up");
        (tx, rx)
    });
    g.bench_function(BenchmarkId::new("tokio_fifo", "8B"), |bn| {
        bn.iter_custom(|n| {
            rt.block_on(async {
                let mut b = [0u8; 8];
                let t = Instant::now();
                for _ in 0..n {
                    tx.write_all(&msg).await.expect("write");
                    rx.read_exact(&mut b).await.expect("read");
                }
                t.elapsed()
            })
        })
    });
    drop(tx);
    drop(rx);
    child.join().expect("fifo child");
    let _ = std::fs::remove_dir_all(&dir);
    g.finish();
}

/// Sends `count` 8-byte messages each time the control pipe asks for a count; 0 ends.
fn produce((mut tx, ctl): (Producer, Connection)) {
    let msg = 1u64.to_le_bytes();
    while let Ok(n) = ctl.recv::<u64>() {
        if n == 0 {
            return;
        }
        for _ in 0..n {
            tx.send(&msg).expect("send");
        }
    }
}

fn stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_8b");
    g.throughput(Throughput::Elements(1));
    let rt = runtime();
    // A 64 KiB ring drains in about as long as a kernel wake-up takes (4096 records of
    // 16 bytes); an 8 MiB ring is what `benches/ring.rs` streams through.
    for (cap, label) in [(1usize << 16, "64KiB"), (8 << 20, "8MiB")] {
        let name = format!("shmkit-bench-async-stream-{}-{label}", std::process::id());
        let (tx, rx) = spsc::channel(&name, cap).expect("ring");
        let (ctl, ctl_child) = Pipe::new().expect("pipe");
        let child =
            shmkit_process::spawn(produce, (tx.transfer(), ctl_child.transfer())).expect("spawn");
        let mut rx = Async::new(rx);
        g.bench_function(BenchmarkId::new("async", label), |bn| {
            bn.iter_custom(|n| {
                rt.block_on(async {
                    let mut buf = Vec::new();
                    let t = Instant::now();
                    ctl.send(&n).expect("ask");
                    for _ in 0..n {
                        rx.recv_into(&mut buf).await.expect("recv");
                    }
                    t.elapsed()
                })
            })
        });
        let mut rx: Consumer = rx.into_inner();
        g.bench_function(BenchmarkId::new("blocking", label), |bn| {
            bn.iter_custom(|n| {
                let mut buf = Vec::new();
                let t = Instant::now();
                ctl.send(&n).expect("ask");
                for _ in 0..n {
                    rx.recv_into(&mut buf).expect("recv");
                }
                t.elapsed()
            })
        });
        ctl.send(&0u64).expect("stop");
        child.join().expect("producer child");
    }
    g.finish();
}

/// Waits for `ping`, clears it, sets `pong`; until `stop` is set.
fn pong((ping, pong, stop): (Handle<Event>, Handle<Event>, Handle<Event>)) {
    let (ping, pong, stop) = (
        ping.open().unwrap(),
        pong.open().unwrap(),
        stop.open().unwrap(),
    );
    loop {
        ping.wait();
        ping.clear();
        if stop.is_set() {
            return;
        }
        pong.set();
    }
}

fn event_wakeup(c: &mut Criterion) {
    let mut g = c.benchmark_group("event_wakeup");
    let rt = runtime();
    let (ping, pong_ev, stop) = (
        Event::anonymous().expect("event"),
        Event::anonymous().expect("event"),
        Event::anonymous().expect("event"),
    );
    let child = shmkit_process::spawn(pong, (ping.handle(), pong_ev.handle(), stop.handle()))
        .expect("spawn");
    let pong_ev = Async::new(pong_ev);
    g.bench_function(BenchmarkId::new("async", "round_trip"), |bn| {
        bn.iter_custom(|n| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..n {
                    ping.set();
                    pong_ev.wait().await;
                    pong_ev.clear();
                }
                t.elapsed()
            })
        })
    });
    g.bench_function(BenchmarkId::new("blocking", "round_trip"), |bn| {
        bn.iter(|| {
            ping.set();
            Event::wait(&pong_ev);
            pong_ev.clear();
        })
    });
    stop.set();
    ping.set();
    child.join().expect("pong child");
    g.finish();
}

criterion_group!(benches, roundtrip, stream, event_wakeup);

fn main() {
    shmkit_process::init();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
