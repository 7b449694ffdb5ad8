//! The SPSC core on a heap buffer: index arithmetic against a `VecDeque` model,
//! wrap-around at every offset, limits, corruption. (Runs under Miri too.)
#![cfg(not(shmkit_loom))]

use proptest::prelude::*;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::spsc::{ConsumerCore, HeapRing, ProducerCore, footprint};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Recv,
    Batch(Vec<usize>),
    RecvBatch(usize),
    ReadBatch(usize),
    /// Park both roles and resume them (as `Queue` does between lock turns).
    Park,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..80).prop_map(Op::Send),
        Just(Op::Recv),
        proptest::collection::vec(0usize..40, 0..5).prop_map(Op::Batch),
        (0usize..4).prop_map(Op::RecvBatch),
        (0usize..4).prop_map(Op::ReadBatch),
        Just(Op::Park),
    ]
}

fn msg(seq: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]
    #[test]
    fn matches_vecdeque(cap_log in 5u32..9, ops in proptest::collection::vec(op(), 1..200)) {
        let cap = 1u64 << cap_log;
        let mut heap = HeapRing::new(cap);
        // SAFETY: `heap` outlives both roles (dropped at the end of the test).
        let ring = unsafe { heap.ring() };
        let mut p = ProducerCore::attach(ring).unwrap();
        let mut c = ConsumerCore::attach(ring).unwrap();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seq = 0u32;
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Send(len) => {
                    let m = msg(seq, len);
                    seq += 1;
                    match p.try_send(&m) {
                        Ok(()) => model.push_back(m),
                        Err(RawError::Full) => {
                            // Full is only legal if the bytes in use (messages plus
                            // padding the consumer has not skipped yet) leave no room
                            // for the record and the next length word.
                            let used = ring.used_bytes();
                            prop_assert!(used + footprint(len as u64) > cap,
                                "Full with {used} used of {cap}");
                        }
                        Err(RawError::TooLarge { .. }) => prop_assert!(len > (cap / 2 - 8) as usize),
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Recv => match c.try_recv(&mut out) {
                    Ok(()) => prop_assert_eq!(Some(out.clone()), model.pop_front()),
                    Err(RawError::Empty) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "{e}"),
                },
                Op::Batch(lens) => {
                    let ms: Vec<Vec<u8>> = lens.iter().map(|&l| { seq += 1; msg(seq, l) }).collect();
                    match p.try_send_batch(&ms) {
                        Ok(n) => model.extend(ms.into_iter().take(n)),
                        Err(RawError::TooLarge { .. }) => {}
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::ReadBatch(max) => {
                    let mut v = Vec::new();
                    let n = c.read_batch(max, |m| v.push(m.to_vec())).unwrap();
                    prop_assert_eq!(n, v.len());
                    prop_assert!(n <= max);
                    for m in v {
                        prop_assert_eq!(Some(m), model.pop_front());
                    }
                }
                Op::Park => {
                    p = ProducerCore::resume(ring, p.park()).unwrap();
                    c = ConsumerCore::resume(ring, c.park()).unwrap();
                }
                Op::RecvBatch(max) => {
                    let mut v = Vec::new();
                    let n = c.try_recv_batch(&mut v, max).unwrap();
                    prop_assert_eq!(n, v.len());
                    for m in v {
                        prop_assert_eq!(Some(m), model.pop_front());
                    }
                }
            }
            prop_assert_eq!(ring.message_count(), model.len() as u64);
        }
        while let Some(m) = model.pop_front() {
            c.try_recv(&mut out).unwrap();
            prop_assert_eq!(out.clone(), m);
        }
        prop_assert_eq!(c.try_recv(&mut out), Err(RawError::Empty));
    }
}

#[test]
fn wrap_around_at_every_offset() {
    let cap = 128u64;
    let mut heap = HeapRing::new(cap);
    // SAFETY: `heap` outlives both roles.
    let ring = unsafe { heap.ring() };
    let mut p = ProducerCore::attach(ring).unwrap();
    let mut c = ConsumerCore::attach(ring).unwrap();
    let mut out = Vec::new();
    for start in (0..cap).step_by(8) {
        // Move the ring to offset `start` with an empty ring, then send every size.
        while ring
            .header()
            .tail
            .pos
            .load(std::sync::atomic::Ordering::Relaxed)
            % cap
            != start
        {
            p.try_send(&[]).unwrap();
            c.try_recv(&mut out).unwrap();
        }
        for len in 0..=ring.max_message() {
            let m = msg(len as u32, len);
            if p.try_send(&m) == Err(RawError::Full) {
                // Padding to the end was published; the consumer skips it, then the
                // message fits at offset 0.
                assert_eq!(c.try_recv(&mut out), Err(RawError::Empty));
                p.try_send(&m).unwrap();
            }
            c.try_recv(&mut out).unwrap();
            assert_eq!(out, m, "start {start} len {len}");
        }
    }
}

#[test]
fn zero_length_and_max_size() {
    let mut heap = HeapRing::new(64);
    // SAFETY: `heap` outlives both roles.
    let ring = unsafe { heap.ring() };
    let mut p = ProducerCore::attach(ring).unwrap();
    let mut c = ConsumerCore::attach(ring).unwrap();
    let mut out = vec![1];
    p.try_send(&[]).unwrap();
    c.try_recv(&mut out).unwrap();
    assert!(out.is_empty());
    let max = ring.max_message();
    assert_eq!(max, 24);
    // The largest message fits an empty ring at any offset, without the consumer.
    for _ in 0..8 {
        p.try_send(&[7; 24]).unwrap();
        c.try_recv(&mut out).unwrap();
        assert_eq!(out, vec![7; 24]);
        p.try_send(&[]).unwrap();
        c.try_recv(&mut out).unwrap();
    }
    assert_eq!(
        p.try_send(&[0; 25]),
        Err(RawError::TooLarge { len: 25, max: 24 })
    );
}

#[test]
fn zero_copy_grants() {
    let mut heap = HeapRing::new(256);
    // SAFETY: `heap` outlives both roles.
    let ring = unsafe { heap.ring() };
    let mut p = ProducerCore::attach(ring).unwrap();
    let mut c = ConsumerCore::attach(ring).unwrap();
    {
        let mut g = p.reserve(5).unwrap();
        g.as_mut_slice().copy_from_slice(b"hello");
        // Dropped without commit: nothing visible.
    }
    assert!(c.read().unwrap().is_none());
    let mut g = p.reserve(5).unwrap();
    g.as_mut_slice().copy_from_slice(b"world");
    g.commit();
    {
        let r = c.read().unwrap().unwrap();
        assert_eq!(&*r, b"world");
        // Dropped without release: still there.
    }
    let r = c.read().unwrap().unwrap();
    assert_eq!(&*r, b"world");
    r.release();
    assert!(c.read().unwrap().is_none());
}

#[test]
fn corrupted_positions_and_lengths() {
    let mut heap = HeapRing::new(64);
    // SAFETY: `heap` outlives the roles.
    let ring = unsafe { heap.ring() };
    let mut p = ProducerCore::attach(ring).unwrap();
    let mut c = ConsumerCore::attach(ring).unwrap();
    p.try_send(b"abc").unwrap();
    heap.corrupt_tail(1 << 50);
    let mut out = Vec::new();
    // The consumer finds records by their length words and never reads `tail`: the
    // message arrives, and then nothing (never a read past the ring).
    c.try_recv(&mut out).unwrap();
    assert_eq!(out, b"abc");
    assert_eq!(c.try_recv(&mut out), Err(RawError::Empty));
    // A producer attaching validates `tail` and refuses it.
    assert!(matches!(
        ProducerCore::attach(ring),
        Err(RawError::Corrupted(_))
    ));

    let mut heap = HeapRing::new(64);
    // SAFETY: `heap` outlives the roles.
    let ring = unsafe { heap.ring() };
    let mut p = ProducerCore::attach(ring).unwrap();
    p.try_send(b"abc").unwrap();
    heap.corrupt_word(0, 1000);
    let mut c = ConsumerCore::attach(ring).unwrap();
    assert!(matches!(c.try_recv(&mut out), Err(RawError::Corrupted(_))));
    heap.corrupt_word(0, u64::MAX - 3);
    assert!(matches!(c.try_recv(&mut out), Err(RawError::Corrupted(_))));
}

#[test]
fn threads_fifo() {
    let mut heap = HeapRing::new(256);
    // SAFETY: `heap` outlives the scoped threads.
    let ring = unsafe { heap.ring() };
    let n: u32 = if cfg!(miri) { 200 } else { 100_000 };
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut p = ProducerCore::attach(ring).unwrap();
            for i in 0..n {
                let m = msg(i, (i % 50) as usize);
                loop {
                    match p.try_send(&m) {
                        Ok(()) => break,
                        Err(RawError::Full) => std::hint::spin_loop(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut c = ConsumerCore::attach(ring).unwrap();
        let mut out = Vec::new();
        for i in 0..n {
            loop {
                match c.try_recv(&mut out) {
                    Ok(()) => break,
                    Err(RawError::Empty) => std::hint::spin_loop(),
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(out, msg(i, (i % 50) as usize));
        }
    });
}

/// Found by fuzzing (fuzz/fuzz_targets/spsc_ring.rs): the message counters are loaded
/// from shared memory at attach and were incremented with `+= 1`, so a peer that stored
/// `u64::MAX` there made the next send or receive panic on overflow in debug builds.
#[test]
fn counters_at_u64_max_wrap_instead_of_panicking() {
    let mut heap = HeapRing::new(64);
    // SAFETY: `heap` outlives both roles.
    let ring = unsafe { heap.ring() };
    let h = ring.header();
    h.tail
        .count
        .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    h.head
        .count
        .store(u64::MAX, std::sync::atomic::Ordering::Relaxed);
    let mut p = ProducerCore::attach(ring).unwrap();
    let mut c = ConsumerCore::attach(ring).unwrap();
    p.try_send(b"x").unwrap();
    let mut out = Vec::new();
    c.try_recv(&mut out).unwrap();
    assert_eq!(out, b"x");
    assert_eq!(ring.message_count(), 0);
}

/// A parked state that cannot be right is refused, not trusted.
#[test]
fn resume_refuses_inconsistent_parked_state() {
    use shmkit_ring::raw::spsc::Parked;
    let mut heap = HeapRing::new(64);
    // SAFETY: `heap` outlives the ring (dropped at the end of the test).
    let ring = unsafe { heap.ring() };
    for bad in [
        Parked {
            pos: 200,
            other: 0,
            count: 0,
        }, // tail more than a ring ahead of head
        Parked {
            pos: 12,
            other: 8,
            count: 0,
        }, // not 8-aligned
    ] {
        assert!(matches!(
            ProducerCore::resume(ring, bad),
            Err(RawError::Corrupted(_))
        ));
    }
    // A consumer's position must be 8-aligned (it never needs the tail: `other` is
    // unused).
    let bad = Parked {
        pos: 12,
        other: 12,
        count: 0,
    };
    assert!(matches!(
        ConsumerCore::resume(ring, bad),
        Err(RawError::Corrupted(_))
    ));
    let fine = Parked {
        pos: 64,
        other: 8,
        count: 3,
    };
    assert_eq!(ProducerCore::resume(ring, fine).unwrap().park(), fine);
}

/// Regression (found by the scribbler test): padding markers at offset 0 made the
/// consumer skip whole laps for ever; padding never starts there, so it is `Corrupted`.
#[test]
fn padding_at_offset_zero_is_corrupted_not_an_endless_skip() {
    let mut heap = HeapRing::new(64);
    heap.corrupt_word(0, u64::MAX);
    // SAFETY: `heap` outlives the roles.
    let ring = unsafe { heap.ring() };
    let mut c = ConsumerCore::attach(ring).unwrap();
    let mut out = Vec::new();
    assert!(matches!(c.try_recv(&mut out), Err(RawError::Corrupted(_))));
    assert!(matches!(
        ProducerCore::attach(ring),
        Err(RawError::Corrupted(_))
    ));
}
