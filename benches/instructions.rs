//! Instructions per message on the hot paths, counted rather than timed: one thread
//! sends and receives through a ring, so no cache line moves between cores and the
//! count is the same on every run (timings of these paths move 2-10x between runs on
//! a 2-vCPU VM; see docs/benchmarks.md).
//!
//! The binary runs one path `n` times; `benches/instructions.sh` runs it under
//! `valgrind --tool=callgrind` at `n` and `2n` and prints the difference per message,
//! so start-up cancels out:
//!
//! ```text
//! bash benches/instructions.sh            # every path, 8 B, 64 B and 1 KiB
//! target/release/deps/instructions-* zero_copy 100000 64   # one path, by hand
//! ```
//!
//! Paths (each a send and its receive, one message per call):
//! - `copy`: `Producer::send` + `Consumer::recv_into` (a `Blocking` ring);
//! - `zero_copy`: `reserve`, write, `commit` + `read`, touch a byte, `release`;
//! - `try_copy`: `try_send` + `try_recv_into`;
//! - `try_zero_copy`: `try_reserve` + `try_read`;
//! - `busy_poll_copy`: `copy` on a `BusyPoll` ring (no fence, no sleeper check);
//! - `queue_u64`: `Queue<u64>::put` + `get` (the size is ignored).

use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Queue, WaitStrategy};
use std::hint::black_box;

const PATHS: &[&str] = &[
    "copy",
    "zero_copy",
    "try_copy",
    "try_zero_copy",
    "busy_poll_copy",
    "queue_u64",
];

fn ring(strategy: WaitStrategy) -> (Producer, Consumer) {
    spsc::builder(1 << 16)
        .wait(strategy)
        .create()
        .expect("an anonymous ring")
}

/// `step` `n` times.
fn repeat(n: u64, mut step: impl FnMut()) {
    for _ in 0..n {
        step();
    }
}

fn run(path: &str, n: u64, size: usize) {
    let msg = vec![0x5au8; size];
    let mut buf = Vec::with_capacity(size);
    let mut sum = 0u64;
    let (mut tx, mut rx) = ring(if path == "busy_poll_copy" {
        WaitStrategy::BusyPoll
    } else {
        WaitStrategy::Blocking
    });
    match path {
        "copy" | "busy_poll_copy" => repeat(n, || {
            tx.send(&msg).expect("send");
            rx.recv_into(&mut buf).expect("recv");
            sum += u64::from(buf[0]);
        }),
        "zero_copy" => repeat(n, || {
            let mut g = tx.reserve(size).expect("reserve");
            g.as_mut_slice().copy_from_slice(&msg);
            g.commit();
            let r = rx.read().expect("read");
            sum += u64::from(r[0]);
            r.release();
        }),
        "try_copy" => repeat(n, || {
            tx.try_send(&msg).expect("try_send");
            rx.try_recv_into(&mut buf).expect("try_recv");
            sum += u64::from(buf[0]);
        }),
        "try_zero_copy" => repeat(n, || {
            let mut g = tx.try_reserve(size).expect("try_reserve");
            g.as_mut_slice().copy_from_slice(&msg);
            g.commit();
            let r = rx.try_read().expect("try_read");
            sum += u64::from(r[0]);
            r.release();
        }),
        "queue_u64" => {
            let q = Queue::<u64>::anonymous(1 << 16).expect("an anonymous queue");
            let mut i = 0u64;
            repeat(n, || {
                q.put(&i).expect("put");
                sum += q.get().expect("get");
                i += 1;
            });
        }
        other => panic!("unknown path {other:?}; the paths: {PATHS:?}"),
    }
    black_box(sum);
}

fn main() {
    // `cargo bench` runs every bench binary with `--bench`: nothing to time here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.as_slice() {
        [path, n] => run(path, n.parse().expect("a count"), 8),
        [path, n, size] => run(
            path,
            n.parse().expect("a count"),
            size.parse().expect("a size in bytes"),
        ),
        _ => eprintln!(
            "instructions: counts, not times; run `bash benches/instructions.sh` \
             (paths: {PATHS:?})"
        ),
    }
}
