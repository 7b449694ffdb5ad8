//! `Queue` behaves like Python's `multiprocessing.Queue` (issue 15): typed at open, no
//! item dropped on a decode failure, shutdown with several consumers, no small handle
//! limit, and a handle that never reached its child does not hold the queue open.
//! Real processes; every wait bounded; every name unique and unlinked at the end.

#![cfg(not(miri))] // real processes and syscalls

use serde::{Deserialize, Deserializer, Serialize};
use shmkit_ring::{Error, PodQueue, Queue, TryRecvError};
use shmkit_testing::{assert_unlinked, unique};
use std::time::{Duration, Instant};

shmkit_process::test_support!();

/// Long enough for any honest wait on a loaded 2-core machine; a hang fails the test.
const BOUND: Duration = Duration::from_secs(20);

// --- typed at open -----------------------------------------------------------------

#[test]
fn open_with_another_item_type_is_a_mismatch_naming_both_types() {
    let name = unique("typed");
    let q = Queue::<u64>::create(&name, 1 << 12).unwrap();
    q.put(&7).unwrap();
    let err = Queue::<String>::open(&name).expect_err("a Queue<u64> opened as Queue<String>");
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::Segment(shmkit_segment::Error::Mismatch { .. })),
        "{msg}"
    );
    assert!(msg.contains("u64") && msg.contains("String"), "{msg}");
    // The item is still there for a handle of the right type.
    let same = Queue::<u64>::open(&name).unwrap();
    assert_eq!(same.get_timeout(BOUND).unwrap(), 7);
    drop((q, same));
    assert_unlinked(&name);
}

/// Encodes like a `u32`, but refuses to decode odd numbers: a decode failure on demand.
#[derive(Debug, PartialEq, Serialize)]
struct Even(u32);

impl<'de> Deserialize<'de> for Even {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n % 2 == 1 {
            return Err(serde::de::Error::custom(format!("{n} is odd")));
        }
        Ok(Even(n))
    }
}

#[test]
fn a_decode_failure_names_the_queue_and_hands_the_item_back() {
    let name = unique("decode");
    let q = Queue::<Even>::create(&name, 1 << 12).unwrap();
    q.put(&Even(3)).unwrap();
    q.put(&Even(4)).unwrap();
    let err = q.get_timeout(BOUND).expect_err("3 does not decode");
    let msg = err.to_string();
    assert!(
        msg.contains(&name) && msg.contains("does not decode"),
        "{msg}"
    );
    match err {
        Error::Undecodable { bytes, .. } => {
            assert_eq!(postcard::from_bytes::<u32>(&bytes).unwrap(), 3)
        }
        e => panic!("expected Undecodable, got {e:?}"),
    }
    // The next item is intact and in order.
    assert_eq!(q.get_timeout(BOUND).unwrap(), Even(4));
    drop(q);
    assert_unlinked(&name);
}

// --- shutdown with several consumers ------------------------------------------------

/// A worker that only gets: it never puts, so its handle is not a producer.
fn count_until_disconnected(q: Queue<u32>) -> Result<(u64, u64), String> {
    let (mut n, mut sum) = (0, 0);
    loop {
        match q.get_timeout(BOUND) {
            Ok(v) => {
                n += 1;
                sum += u64::from(v);
            }
            Err(Error::Disconnected) => return Ok((n, sum)),
            Err(e) => return Err(format!("after {n} items: {e}")),
        }
    }
}

#[test]
fn every_consumer_sees_disconnected_once_the_producers_closed() {
    let name = unique("shutdown");
    let q = Queue::<u32>::create(&name, 1 << 16).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| shmkit_process::spawn(count_until_disconnected, q.clone()).unwrap())
        .collect();
    for i in 0..2000 {
        q.put_timeout(&i, BOUND).unwrap();
    }
    q.close();
    let (mut n, mut sum) = (0, 0);
    for mut w in workers {
        let (wn, ws) = w.join_timeout(BOUND * 2).unwrap().unwrap();
        n += wn;
        sum += ws;
    }
    assert_eq!((n, sum), (2000, (0..2000u64).sum()));
    drop(q);
    assert_unlinked(&name);
}

#[test]
fn a_fresh_queue_is_not_disconnected_before_anyone_put() {
    let q = Queue::<u32>::anonymous(1 << 12).unwrap();
    let other = q.clone();
    // Nobody has put yet: every open handle may still become a producer.
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    other.put(&1).unwrap();
    assert_eq!(q.get_timeout(BOUND).unwrap(), 1);
    // `other` put and is still open: wait (bounded) rather than disconnect.
    assert!(matches!(
        q.get_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    drop(other);
    assert!(matches!(q.get_timeout(BOUND), Err(Error::Disconnected)));
}

// --- no small handle limit -----------------------------------------------------------

#[test]
fn a_queue_takes_a_handle_per_worker_of_a_large_machine() {
    let name = unique("handles");
    let q = Queue::<u32>::create(&name, 1 << 12).unwrap();
    let more: Vec<_> = (0..255).map(|_| q.try_clone().unwrap()).collect();
    more[254].put(&9).unwrap();
    assert_eq!(q.get_timeout(BOUND).unwrap(), 9);
    drop((q, more));
    assert_unlinked(&name);
}

#[test]
fn the_handle_limit_is_a_clear_error_in_the_process_that_asked() {
    let q = PodQueue::<u32>::anonymous(16).unwrap();
    let mut held = Vec::new();
    let err = loop {
        match q.try_clone() {
            Ok(h) => held.push(h),
            Err(e) => break e,
        }
        assert!(held.len() < 100_000, "no handle limit at all");
    };
    assert!(
        matches!(err, Error::TooManyHandles { max, .. } if max as usize == held.len() + 1),
        "{err} after {} clones",
        held.len()
    );
    // Handing one more handle to a child fails here, in the parent, saying why: the
    // child's slot is reserved when the handle is serialized.
    let extra = held.pop().expect("a handle to move");
    let msg = match shmkit_process::spawn(pod_sum, extra) {
        Ok(_) => panic!("a child got a handle although no slot was left"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("handle slots"), "{msg}");
    drop(held);
}

fn pod_sum(q: PodQueue<u32>) -> u64 {
    let mut s = 0;
    while let Ok(v) = q.get_timeout(BOUND) {
        s += u64::from(v);
    }
    s
}

// --- a handle that never arrived ------------------------------------------------------

/// Deserializes only after an eternity: a child holding it is killed before it gets to
/// the queue handle that follows it in the arguments.
#[derive(Serialize)]
struct Stall;

impl<'de> Deserialize<'de> for Stall {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        loop {
            std::thread::park();
        }
    }
}

fn never_opens((_, _q): (Stall, Queue<u32>)) {}

fn never_opens_pod((_, _q): (Stall, PodQueue<u32>)) {}

#[test]
fn a_queue_handle_for_a_child_killed_before_opening_it_does_not_hold_the_queue_open() {
    let q = Queue::<u32>::anonymous(1 << 12).unwrap();
    let mut child = shmkit_process::spawn(never_opens, (Stall, q.clone())).unwrap();
    // The handle on its way counts as a possible producer while its receiver lives.
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    child.kill().unwrap();
    assert!(child.join_timeout(BOUND).is_err());
    let start = Instant::now();
    assert!(matches!(q.get_timeout(BOUND), Err(Error::Disconnected)));
    assert!(start.elapsed() < BOUND);
}

#[test]
fn a_pod_queue_handle_for_a_child_killed_before_opening_it_does_not_hold_the_queue_open() {
    let q = PodQueue::<u32>::anonymous(16).unwrap();
    let mut child = shmkit_process::spawn(never_opens_pod, (Stall, q.clone())).unwrap();
    assert!(matches!(q.try_get(), Err(TryRecvError::Empty)));
    child.kill().unwrap();
    assert!(child.join_timeout(BOUND).is_err());
    assert!(matches!(q.get_timeout(BOUND), Err(Error::Disconnected)));
}

// --- SPSC roles and pipe ends in transit ----------------------------------------------

fn never_takes_producer((_, _tx): (Stall, shmkit_ring::spsc::Producer)) {}

fn never_takes_consumer((_, _rx): (Stall, shmkit_ring::spsc::Consumer)) {}

fn never_takes_end((_, _end): (Stall, shmkit_ring::Connection)) {}

#[test]
fn an_spsc_producer_for_a_child_killed_before_taking_it_disconnects_the_consumer() {
    let name = unique("spsc-tx");
    let (tx, mut rx) = shmkit_ring::spsc::channel(&name, 1 << 12).unwrap();
    let mut child = shmkit_process::spawn(never_takes_producer, (Stall, tx.transfer())).unwrap();
    let mut buf = Vec::new();
    // The role is on its way to a live child: wait, do not disconnect.
    assert!(matches!(
        rx.recv_into_timeout(&mut buf, Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    child.kill().unwrap();
    assert!(child.join_timeout(BOUND).is_err());
    assert!(matches!(
        rx.recv_into_timeout(&mut buf, BOUND),
        Err(Error::Disconnected)
    ));
    drop(rx);
    assert_unlinked(&name);
}

#[test]
fn an_spsc_consumer_for_a_child_killed_before_taking_it_disconnects_the_producer() {
    let name = unique("spsc-rx");
    let (mut tx, rx) = shmkit_ring::spsc::channel(&name, 1 << 12).unwrap();
    let mut child = shmkit_process::spawn(never_takes_consumer, (Stall, rx.transfer())).unwrap();
    child.kill().unwrap();
    assert!(child.join_timeout(BOUND).is_err());
    // A sender notices when it must wait for room: fill the ring.
    let start = Instant::now();
    let err = loop {
        match tx.send_timeout(&[7u8; 64], BOUND) {
            Ok(()) => assert!(start.elapsed() < BOUND, "never full"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::Disconnected), "{err}");
    drop(tx);
    assert_unlinked(&name);
}

#[test]
fn a_pipe_end_for_a_child_killed_before_taking_it_disconnects_the_other_end() {
    let (a, b) = shmkit_ring::Pipe::new().unwrap();
    let mut child = shmkit_process::spawn(never_takes_end, (Stall, b.transfer())).unwrap();
    child.kill().unwrap();
    assert!(child.join_timeout(BOUND).is_err());
    assert!(matches!(
        a.recv_timeout::<u32>(BOUND),
        Err(Error::Disconnected)
    ));
}
