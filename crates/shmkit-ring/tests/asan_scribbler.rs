//! A scribbler process writes random values into a live SPSC ring's positions, counters,
//! side states and length words while this process sends and receives on it. Run under
//! AddressSanitizer by ci/asan.sh (`-Zsanitizer=address`): whatever the scribbler
//! stores, the reader and writer return `Corrupted` (or Empty/Full/Disconnected) and
//! never read or write outside the mapping or their buffers. Also a plain test.
//!
//! Long mode: `SCRIBBLE_MS=60000 cargo test -p shmkit-ring --test asan_scribbler`.

#![cfg(not(miri))] // real processes and shared memory

use std::time::{Duration, Instant};

use shmkit_ring::spsc;
use shmkit_ring::{Error, TryRecvError, TrySendError};
use shmkit_segment::Segment;

shmkit_process::test_support!();

const CAP: usize = 4096;
const RING_HEADER: usize = 384;

/// The words a peer can break: tail/head positions and counters, the side states, and
/// the data area's words (length words among them). Not the capacity word: it is
/// checked when a role is taken (fuzz/ring_segment covers it), and a scribbled one
/// would only make every re-take fail.
fn scribble((name, ms, seed): (String, u64, u64)) -> u64 {
    let seg = Segment::open(&name).expect("open the ring's segment");
    let mut x = seed | 1;
    let mut next = move || {
        // xorshift64*: cheap, no dependency.
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let end = Instant::now() + Duration::from_millis(ms);
    let mut writes = 0u64;
    while Instant::now() < end {
        let r = next();
        let offset = match r % 7 {
            0 => 0,                                               // tail.pos
            1 => 128,                                             // head.pos
            2 => 8,                                               // tail.count
            3 => 136,                                             // head.count
            4 => 280,                                             // producer_state, consumer_state
            _ => RING_HEADER + (next() as usize % (CAP / 8)) * 8, // a data word
        };
        let v = next();
        let value = match v % 4 {
            0 => v,                           // anything
            1 => (v % (4 * CAP as u64)) & !7, // a plausible position or length
            2 => u64::MAX,                    // the padding marker
            _ => v % 64,                      // a small length
        };
        seg.atomic_u64(offset)
            .expect("offset inside the payload")
            .store(value, std::sync::atomic::Ordering::Relaxed);
        writes += 1;
        if writes.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
    writes
}

#[test]
fn a_scribbled_ring_reports_corruption_and_stays_in_bounds() {
    let ms: u64 = std::env::var("SCRIBBLE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let name = format!("shmkit-test-ring-scribble-{}", std::process::id());
    let (tx, rx) = spsc::channel(&name, CAP).expect("create the ring");
    let max = tx.max_message();
    let child = shmkit_process::spawn(scribble, (name.clone(), ms, 0x9E37_79B9_7F4A_7C15))
        .expect("start the scribbler");

    let mut counts = [0u64; 6]; // sent, received, empty/full, corrupted, disconnected, other
    let mut reopened = [0u64; 2]; // role re-taken, re-taking refused as Corrupted
    let (mut tx, mut rx) = (Some(tx), Some(rx));
    let mut buf = Vec::new();
    let msg = [0xC3u8; 200];
    let end = Instant::now() + Duration::from_millis(ms);
    let mut i = 0usize;
    while Instant::now() < end {
        i += 1;
        if let Some(tx) = tx.as_mut() {
            match tx.try_send(&msg[..i % msg.len()]) {
                Ok(()) => counts[0] += 1,
                Err(TrySendError::Full) => counts[2] += 1,
                Err(TrySendError::Failed(Error::Corrupted { .. })) => counts[3] += 1,
                Err(TrySendError::Disconnected) => counts[4] += 1,
                Err(_) => counts[5] += 1,
            }
        }
        if let Some(rx) = rx.as_mut() {
            match rx.try_recv_into(&mut buf) {
                Ok(()) => {
                    assert!(buf.len() <= max, "a message of {} bytes", buf.len());
                    counts[1] += 1;
                }
                Err(TryRecvError::Empty) => counts[2] += 1,
                Err(TryRecvError::Failed(Error::Corrupted { .. })) => counts[3] += 1,
                Err(TryRecvError::Disconnected) => counts[4] += 1,
                Err(_) => counts[5] += 1,
            }
            // The zero-copy path too: a grant is a slice into the mapping.
            if let Ok(g) = rx.try_read() {
                assert!(g.len() <= max);
                std::hint::black_box(g.iter().map(|&b| u32::from(b)).sum::<u32>());
                g.release();
            }
        }
        // Re-taking the consumer role re-validates both positions from scratch. (The
        // original producer keeps the creator's segment, so the name stays linked.)
        if i.is_multiple_of(1000) {
            rx = None;
        }
        if rx.is_none() {
            rx = spsc::Consumer::open(&name).ok();
            reopened[usize::from(rx.is_none())] += 1;
        }
    }
    let mut child = child;
    let writes = child
        .join_timeout(Duration::from_secs(30))
        .expect("scribbler finished");
    eprintln!(
        "scribbler: {writes} writes in {ms} ms; sent {}, received {}, empty/full {}, \
         corrupted {}, disconnected {}, other {}; roles re-taken {}, refused {}",
        counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], reopened[0], reopened[1]
    );
    assert!(counts[3] > 0, "no Corrupted seen: {counts:?}");
    drop((tx, rx));
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}
