//! The MPMC core on a heap buffer: against a `VecDeque` model, threads, and the
//! dead-producer unblocker. (Runs under Miri too.)
#![cfg(not(shmkit_loom))]

use proptest::prelude::*;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::mpmc::HeapMpmc;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]
    #[test]
    fn matches_vecdeque(cap_log in 1u32..5, ops in proptest::collection::vec(any::<bool>(), 1..200)) {
        let cap = 1u64 << cap_log;
        let mut heap = HeapMpmc::new(cap, 8, 2);
        // SAFETY: `heap` outlives `q`.
        let q = unsafe { heap.queue() };
        let mut model = VecDeque::new();
        let mut next = 0u64;
        for push in ops {
            if push {
                match q.try_push(Some(0), &next.to_le_bytes()) {
                    Ok(()) => { model.push_back(next); prop_assert!(model.len() as u64 <= cap) }
                    Err(RawError::Full) => prop_assert_eq!(model.len() as u64, cap),
                    Err(e) => prop_assert!(false, "{e}"),
                }
                next += 1;
            } else {
                let mut out = [0u8; 8];
                match q.try_pop(&mut out) {
                    Ok(()) => prop_assert_eq!(Some(u64::from_le_bytes(out)), model.pop_front()),
                    Err(RawError::Empty) => prop_assert!(model.is_empty()),
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
            prop_assert_eq!(q.len().unwrap(), model.len() as u64);
            prop_assert_eq!(q.intent(0), 0);
        }
    }
}

#[test]
fn threads_exactly_once() {
    let mut heap = HeapMpmc::new(64, 8, 4);
    // SAFETY: `heap` outlives the scoped threads.
    let q = unsafe { heap.queue() };
    let per: u64 = if cfg!(miri) { 50 } else { 50_000 };
    let producers = 3u64;
    let seen = std::sync::Mutex::new(vec![0u8; (per * producers) as usize]);
    std::thread::scope(|s| {
        for p in 0..producers {
            s.spawn(move || {
                for i in 0..per {
                    let v = p * per + i;
                    while q.try_push(Some(p as u32), &v.to_le_bytes()).is_err() {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                let mut last = vec![None::<u64>; producers as usize];
                let mut out = [0u8; 8];
                let mut got = 0;
                loop {
                    match q.try_pop(&mut out) {
                        Ok(()) => {
                            let v = u64::from_le_bytes(out);
                            let p = (v / per) as usize;
                            // Per-producer FIFO as seen by one consumer.
                            assert!(last[p].is_none_or(|l| l < v));
                            last[p] = Some(v);
                            seen.lock().unwrap()[v as usize] += 1;
                            got += 1;
                        }
                        Err(_) => {
                            if seen.lock().unwrap().iter().all(|&c| c > 0) {
                                break;
                            }
                            std::hint::spin_loop();
                        }
                    }
                }
                got
            });
        }
    });
    assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1));
}

#[test]
fn dead_producer_slot_is_abandoned() {
    let mut heap = HeapMpmc::new(4, 8, 2);
    // SAFETY: `heap` outlives `q`.
    let q = unsafe { heap.queue() };
    let alive = [AtomicBool::new(true), AtomicBool::new(true)];
    // Producer 0 claims position 0 and "dies" before publishing.
    let c = q.try_claim(Some(0)).unwrap();
    let _dies_unpublished = c;
    q.try_push(Some(1), &7u64.to_le_bytes()).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(q.try_pop(&mut out), Err(RawError::Empty));
    // Alive: never skipped.
    assert!(!q.try_unblock(|e| alive[e as usize].load(Ordering::SeqCst)));
    alive[0].store(false, Ordering::SeqCst);
    assert!(q.try_unblock(|e| alive[e as usize].load(Ordering::SeqCst)));
    assert_eq!(q.abandoned(), 1);
    assert_eq!(q.intent(0), 0);
    q.try_pop(&mut out).unwrap();
    assert_eq!(u64::from_le_bytes(out), 7);
    // The abandoned slot is reusable on the next lap.
    for i in 0..4u64 {
        q.try_push(Some(1), &i.to_le_bytes()).unwrap();
    }
    for i in 0..4u64 {
        q.try_pop(&mut out).unwrap();
        assert_eq!(u64::from_le_bytes(out), i);
    }
}

#[test]
fn entry_reuse_waits_for_stale_intent() {
    let mut heap = HeapMpmc::new(4, 8, 1);
    // SAFETY: `heap` outlives `q`.
    let q = unsafe { heap.queue() };
    let _dies_unpublished = q.try_claim(Some(0)).unwrap();
    // The dead owner's intent is still needed: the entry is not reusable yet.
    assert!(!q.claim_entry(0));
    assert!(q.try_unblock(|_| false));
    assert!(q.claim_entry(0));
}

/// Found by fuzzing (fuzz/fuzz_targets/mpmc_slots.rs): a slot sequence corrupted to a
/// value ahead of the position made `try_claim` / `try_pop` reload `tail` / `head` and
/// retry forever (nobody else would ever move them). Now `Corrupted`, at once.
#[test]
fn a_sequence_ahead_of_the_position_is_corrupted_not_a_spin() {
    use crossbeam_utils::CachePadded;
    use shmkit_ring::raw::mpmc::{Mpmc, MpmcHeader};
    use std::cell::UnsafeCell;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    /// The queue's arrays, owned by an `Arc` so a spinning thread (the bug) cannot
    /// outlive them and the test fails by timeout instead of hanging in a join.
    struct Region {
        hdr: MpmcHeader,
        table: [CachePadded<AtomicU64>; 1],
        seqs: [AtomicU64; 4],
        payload: [UnsafeCell<u64>; 4],
    }
    // SAFETY: the payload cells are written only through the queue's protocol (and not
    // at all in this test: both calls fail before touching a slot).
    unsafe impl Sync for Region {}

    let r = Arc::new(Region {
        hdr: MpmcHeader::new(4, 8, 1),
        table: [CachePadded::new(AtomicU64::new(0))],
        seqs: [0, 1, 2, 3].map(AtomicU64::new),
        payload: [0; 4].map(UnsafeCell::new),
    });
    // SAFETY: the arrays live in `r`, which the thread below keeps alive while it uses
    // `q`, and have the lengths `Mpmc::new` requires.
    let q = unsafe {
        Mpmc::new(
            &r.hdr,
            r.table.as_ptr(),
            1,
            r.seqs.as_ptr(),
            UnsafeCell::raw_get(r.payload.as_ptr()).cast(),
            4,
            8,
        )
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let region = r.clone();
    let t = std::thread::spawn(move || {
        let _keep = region;
        // Slot 0 claims to be published for a later lap while tail and head are 0.
        _keep.seqs[0].store(5, Ordering::SeqCst);
        let push = q.try_push(Some(0), &1u64.to_le_bytes());
        _keep.seqs[0].store(9, Ordering::SeqCst);
        let mut out = [0u8; 8];
        let pop = q.try_pop(&mut out);
        tx.send((push, pop)).unwrap();
    });
    let (push, pop) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("try_push / try_pop spun on a corrupt sequence");
    t.join().unwrap();
    assert!(matches!(push, Err(RawError::Corrupted(_))), "{push:?}");
    assert!(matches!(pop, Err(RawError::Corrupted(_))), "{pop:?}");
    assert_eq!(q.intent(0), 0);
}
