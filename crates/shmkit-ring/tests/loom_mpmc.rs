//! loom models of the MPMC slot queue and its dead-producer unblocker. Run:
//! `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-ring --release --test loom_mpmc`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::mpmc::HeapMpmc;

/// Bounded preemptions keep the spin-retry loops' state space small (loom's own advice).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

#[test]
fn two_producers_one_consumer() {
    model(|| {
        let mut heap = HeapMpmc::new(2, 8, 2);
        // SAFETY: the Arc keeps `heap` alive until every thread is joined.
        let q = unsafe { heap.queue() };
        let heap = Arc::new(heap);
        let ts: Vec<_> = (0..2u32)
            .map(|p| {
                let keep = heap.clone();
                loom::thread::spawn(move || {
                    let _keep = keep;
                    while q.try_push(Some(p), &u64::from(p).to_le_bytes()).is_err() {
                        loom::thread::yield_now();
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut out = [0u8; 8];
        while got.len() < 2 {
            match q.try_pop(&mut out) {
                Ok(()) => got.push(u64::from_le_bytes(out)),
                Err(RawError::Empty) => loom::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        got.sort();
        assert_eq!(got, vec![0, 1]);
        for t in ts {
            t.join().unwrap();
        }
    });
}

#[test]
fn dead_claimant_is_skipped_live_one_never() {
    model(|| {
        let mut heap = HeapMpmc::new(2, 8, 2);
        // SAFETY: the Arc keeps `heap` alive until every thread is joined.
        let q = unsafe { heap.queue() };
        let heap = Arc::new(heap);
        let alive = Arc::new([AtomicBool::new(true), AtomicBool::new(true)]);
        // Producer 0 claims a slot and dies before publishing (the kernel then
        // releases its liveness lock: `alive[0] = false`).
        let (k0, a0) = (heap.clone(), alive.clone());
        let dying = loom::thread::spawn(move || {
            let _keep = k0;
            if let Ok(c) = q.try_claim(Some(0)) {
                let _dies_unpublished = c;
            }
            a0[0].store(false, Ordering::SeqCst);
        });
        // Producer 1 publishes 7.
        let k1 = heap.clone();
        let live = loom::thread::spawn(move || {
            let _keep = k1;
            while q.try_push(Some(1), &7u64.to_le_bytes()).is_err() {
                loom::thread::yield_now();
            }
        });
        let mut out = [0u8; 8];
        loop {
            match q.try_pop(&mut out) {
                Ok(()) => break,
                Err(RawError::Empty) => {
                    if !q.try_unblock(|e| alive[e as usize].load(Ordering::SeqCst)) {
                        loom::thread::yield_now();
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        // Only the live producer's item is ever read; at most the dead slot is skipped.
        assert_eq!(u64::from_le_bytes(out), 7);
        assert!(q.abandoned() <= 1);
        dying.join().unwrap();
        live.join().unwrap();
    });
}
