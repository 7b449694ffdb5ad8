//! A `Queue`'s packed records (raw/packed.rs) on a heap ring: items against a `VecDeque`
//! model through appends, closes, bare records, wrap-around, producers and consumers
//! that die mid-step and successors that attach; and a producer and a consumer thread
//! at once (Miri checks their bytes for data races). (Runs under Miri too.)
#![cfg(not(shmkit_loom))]

use proptest::prelude::*;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::packed::{self, PackConsumer, PackLimits, PackProducer};
use shmkit_ring::raw::spsc::HeapRing;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    Put(usize),
    Get,
    Close,
    /// A producer writes an item and dies before its length store; a successor attaches.
    PutAndDie(usize),
    /// A consumer reads an item and dies before storing its position; a successor attaches.
    ReadAndDie,
    /// Another handle's turn: both roles attach afresh from the shared state.
    Reattach,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..12).prop_map(Op::Put),
        1 => (0usize..120).prop_map(Op::Put),
        4 => Just(Op::Get),
        1 => Just(Op::Close),
        1 => (0usize..12).prop_map(Op::PutAndDie),
        1 => Just(Op::ReadAndDie),
        1 => Just(Op::Reattach),
    ]
}

fn item(seq: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

fn limits(cap: u64, small: bool) -> PackLimits {
    if small {
        PackLimits {
            record: 24,
            item: 8,
        }
    } else {
        PackLimits::for_capacity(cap)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]
    #[test]
    fn matches_vecdeque(
        cap_log in 6u32..10,
        small in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let cap = 1u64 << cap_log;
        let lim = limits(cap, small);
        let mut heap = HeapRing::new(cap);
        // SAFETY: `heap` outlives every role (dropped at the end of the test).
        let ring = unsafe { heap.ring() };
        let mut p = PackProducer::attach(ring, lim).unwrap();
        let mut c = PackConsumer::attach(ring).unwrap();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let mut seq = 0u32;
        let max = ring.max_message();
        for op in ops {
            match op {
                Op::Put(len) => {
                    let it = item(seq, len);
                    seq += 1;
                    match p.reserve(len) {
                        Ok(mut g) => {
                            g.as_mut_slice().copy_from_slice(&it);
                            g.commit();
                            model.push_back(it);
                        }
                        Err(RawError::Full) => {
                            prop_assert!(!p.is_open(), "Full closes the open record");
                        }
                        Err(RawError::TooLarge { .. }) => prop_assert!(len > max),
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                Op::Get => match c.read() {
                    Ok(Some(g)) => {
                        prop_assert_eq!(Some(g.to_vec()), model.pop_front());
                        g.release();
                    }
                    Ok(None) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "{e}"),
                },
                Op::Close => p.close(),
                Op::PutAndDie(len) => {
                    if let Ok(mut g) = p.reserve(len) {
                        g.as_mut_slice().fill(0xEE);
                    }
                    p = PackProducer::attach(ring, lim).unwrap();
                }
                Op::ReadAndDie => {
                    if let Ok(Some(g)) = c.read() {
                        prop_assert_eq!(Some(&g.to_vec()), model.front());
                    }
                    c = PackConsumer::attach(ring).unwrap();
                }
                Op::Reattach => {
                    p = PackProducer::attach(ring, lim).unwrap();
                    c = PackConsumer::attach(ring).unwrap();
                }
            }
            prop_assert_eq!(ring.message_count(), model.len() as u64);
        }
        // Drain: exactly the model, then nothing; the ring says empty.
        while let Some(want) = model.pop_front() {
            let g = c.read().unwrap();
            prop_assert_eq!(g.as_deref(), Some(&want[..]));
            g.unwrap().release();
        }
        prop_assert!(c.read().unwrap().is_none());
        prop_assert!(packed::is_empty(&ring));
        prop_assert!(!packed::ready(&ring));
    }
}

/// Once everything is taken, the largest item fits, whatever records were left open or
/// closed: a producer never needs more than the consumer stepping over them.
#[test]
fn an_emptied_ring_takes_the_largest_item() {
    for small in [false, true] {
        for pre in 0..40usize {
            let cap = 128;
            let mut heap = HeapRing::new(cap);
            // SAFETY: `heap` outlives both roles.
            let ring = unsafe { heap.ring() };
            let lim = limits(cap, small);
            let mut p = PackProducer::attach(ring, lim).unwrap();
            let mut c = PackConsumer::attach(ring).unwrap();
            for k in 0..pre {
                let mut g = p.reserve(k % 5).unwrap();
                g.as_mut_slice().fill(k as u8);
                g.commit();
                let g = c.read().unwrap().unwrap();
                assert_eq!(g.len(), k % 5);
                g.release();
            }
            let max = ring.max_message();
            let mut tries = 0;
            loop {
                match p.reserve(max) {
                    Ok(mut g) => {
                        g.as_mut_slice().fill(9);
                        g.commit();
                        break;
                    }
                    Err(RawError::Full) => {
                        // The consumer steps over what the producer closed.
                        assert!(c.read().unwrap().is_none());
                        tries += 1;
                        assert!(tries < 3, "pre {pre}: the largest item never fits");
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(c.read().unwrap().unwrap().len(), max);
        }
    }
}

/// A consumer that caught up with its producer pauses when an open record holds only a
/// few new bytes (`packed::CATCH_UP_BYTES`), then takes them: a pause never hides an
/// item, and an open record with nothing new is reported empty.
#[test]
fn a_consumer_that_caught_up_still_takes_each_new_frame() {
    let cap = 4096;
    let mut heap = HeapRing::new(cap);
    // SAFETY: `heap` outlives both roles.
    let ring = unsafe { heap.ring() };
    let mut p = PackProducer::attach(ring, limits(cap, true)).unwrap();
    let mut c = PackConsumer::attach(ring).unwrap();
    let small = packed::CATCH_UP_BYTES as usize / 4;
    for (seq, len) in [1, 1, small, 0, small * 2, small * 5]
        .into_iter()
        .enumerate()
    {
        let mut g = p.reserve(len).unwrap();
        g.as_mut_slice().copy_from_slice(&item(seq as u32, len));
        g.commit();
        let g = c
            .read()
            .unwrap()
            .expect("a new frame, however small, is taken");
        assert_eq!(&*g, &item(seq as u32, len)[..]);
        g.release();
        assert!(c.read().unwrap().is_none(), "nothing new: empty");
    }
}

/// A producer thread and a consumer thread at once: every item once, in order, intact.
#[test]
fn producer_and_consumer_threads() {
    let n: u32 = if cfg!(miri) { 60 } else { 20_000 };
    let mut heap = HeapRing::new(256);
    // SAFETY: `heap` outlives both threads (scoped below).
    let ring = unsafe { heap.ring() };
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut p = PackProducer::attach(ring, PackLimits::for_capacity(256)).unwrap();
            for i in 0..n {
                let it = item(i, (i % 7) as usize + if i % 13 == 0 { 40 } else { 0 });
                loop {
                    match p.reserve(it.len()) {
                        Ok(mut g) => {
                            g.as_mut_slice().copy_from_slice(&it);
                            g.commit();
                            break;
                        }
                        Err(RawError::Full) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut c = PackConsumer::attach(ring).unwrap();
        for i in 0..n {
            let want = item(i, (i % 7) as usize + if i % 13 == 0 { 40 } else { 0 });
            loop {
                match c.read().unwrap() {
                    Some(g) => {
                        assert_eq!(&*g, &want[..], "item {i}");
                        g.release();
                        break;
                    }
                    None => std::thread::yield_now(),
                }
            }
        }
    });
    drop(heap);
}

/// Values a peer could leave in shared memory are `Corrupted`, never a panic, a read
/// outside the record or a loop: a framed record of no bytes (closed ones filling the
/// ring once made the consumer step around it forever), `CLOSED` without `FRAMES`, a
/// frame whose varint or bytes run past the record, an item position inside a length
/// word or past the record.
#[test]
fn corrupted_records_and_positions_are_refused() {
    use shmkit_ring::raw::packed::{CLOSED, FRAMES};
    use shmkit_ring::raw::spsc::PUBLISHED;
    // (what, words written at data offsets, `head.item_pos`)
    type Case = (&'static str, Vec<(usize, u64)>, u64);
    let cases: Vec<Case> = vec![
        (
            "closed empty records everywhere",
            (0..16)
                .map(|i| (i * 8, PUBLISHED | FRAMES | CLOSED))
                .collect(),
            0,
        ),
        (
            "CLOSED without FRAMES",
            vec![(0, PUBLISHED | CLOSED | 3)],
            0,
        ),
        // Payload byte 0 = 0x0A: a frame of 10 bytes in a record of 4.
        (
            "frame past its record",
            vec![(0, PUBLISHED | FRAMES | 4), (8, 0x0A)],
            0,
        ),
        // A varint that never ends within the record.
        (
            "endless varint",
            vec![(0, PUBLISHED | FRAMES | 3), (8, 0xFF_FFFF)],
            0,
        ),
        (
            "item position in the length word",
            vec![(0, PUBLISHED | FRAMES | 2), (8, 0x0101)],
            4,
        ),
        (
            "item position past the record",
            vec![(0, PUBLISHED | FRAMES | 2), (8, 0x0101)],
            40,
        ),
        (
            "item position in a bare record",
            vec![(0, PUBLISHED | 2)],
            9,
        ),
    ];
    for (what, words, item_pos) in cases {
        let mut heap = HeapRing::new(128);
        for &(off, v) in &words {
            heap.corrupt_word(off, v);
        }
        // SAFETY: `heap` outlives the role.
        let ring = unsafe { heap.ring() };
        ring.header()
            .head
            .item_pos
            .store(item_pos, shmkit_ring::primitive::Ordering::Relaxed);
        let mut c = PackConsumer::attach(ring).unwrap();
        let got = c.read().map(|g| g.map(|g| g.to_vec()));
        assert!(
            matches!(got, Err(RawError::Corrupted(_))),
            "{what}: {got:?}"
        );
        // The helpers never panic on it either.
        let _ = (
            packed::ready(&ring),
            packed::is_empty(&ring),
            packed::drained_end(&ring),
        );
    }
}
