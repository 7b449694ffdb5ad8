//! loom model of the SPSC byte ring: publication, wrap-around with padding, and the
//! cached positions. Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-ring --release --test loom_spsc`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::spsc::{ConsumerCore, HeapRing, ProducerCore};

fn msg(i: u8) -> Vec<u8> {
    vec![i; [3usize, 20, 17][i as usize]]
}

/// Bounded preemptions keep the spin-retry loops' state space small (loom's own advice).
/// Send `m`, yielding to the model while the ring is full.
fn send(p: &mut ProducerCore, m: &[u8]) {
    loop {
        match p.try_send(m) {
            Ok(()) => return,
            Err(RawError::Full) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Receive the next message into `out`, yielding to the model while the ring is empty.
fn recv<'a>(c: &mut ConsumerCore, out: &'a mut Vec<u8>) -> &'a [u8] {
    loop {
        match c.try_recv(out) {
            Ok(()) => return out,
            Err(RawError::Empty) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

#[test]
fn spsc_fifo_with_wrap() {
    model(|| {
        // 64-byte ring: records of 16, 32, 32 bytes force padding and wrap-around.
        let mut heap = HeapRing::new(64);
        // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
        let ring = unsafe { heap.ring() };
        let heap = Arc::new(heap);
        let h2 = heap.clone();
        let t = loom::thread::spawn(move || {
            let _keep = h2;
            let mut p = ProducerCore::attach(ring).unwrap();
            for i in 0..3u8 {
                send(&mut p, &msg(i));
            }
        });
        let mut c = ConsumerCore::attach(ring).unwrap();
        let mut out = Vec::new();
        for i in 0..3u8 {
            assert_eq!(recv(&mut c, &mut out), msg(i));
        }
        t.join().unwrap();
        drop(heap);
    });
}

/// The sleep/wake protocol: the consumer sleeps *without* a timeout, so a lost
/// wake-up is a deadlock, which loom reports (shmkit-sync's loom futex model).
#[test]
fn no_lost_wakeup() {
    model(|| {
        let mut heap = HeapRing::new(64);
        // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
        let ring = unsafe { heap.ring() };
        let heap = Arc::new(heap);
        let h2 = heap.clone();
        let t = loom::thread::spawn(move || {
            let _keep = h2;
            let mut p = ProducerCore::attach(ring).unwrap();
            p.try_send(b"wake").unwrap();
            shmkit_ring::WaitStrategy::Blocking.notify(&ring.header().meta.data_wake);
        });
        let mut c = ConsumerCore::attach(ring).unwrap();
        let mut out = Vec::new();
        loop {
            match c.try_recv(&mut out) {
                Ok(()) => break,
                Err(RawError::Empty) => {
                    shmkit_ring::wait::sleep_until_woken(&ring.header().meta.data_wake, || {
                        ring.has_data()
                    })
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(out, b"wake");
        t.join().unwrap();
    });
}

/// `BusyPoll` and `Backoff`: the producer publishes with no fence and no sleeper check
/// (`notify` does nothing for them), and the consumer only polls (a `park` for them is
/// polling between naps). A message can then be late, never lost: the consumer that keeps
/// polling sees it.
#[test]
fn polling_strategies_lose_no_message() {
    use shmkit_ring::WaitStrategy;
    for strategy in [WaitStrategy::BusyPoll, WaitStrategy::Backoff] {
        model(move || {
            let mut heap = HeapRing::new(64);
            // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
            let ring = unsafe { heap.ring() };
            let heap = Arc::new(heap);
            let h2 = heap.clone();
            let t = loom::thread::spawn(move || {
                let _keep = h2;
                let mut p = ProducerCore::attach(ring).unwrap();
                for i in 0..2u8 {
                    p.try_send(&msg(i)).unwrap();
                    strategy.notify(&ring.header().meta.data_wake);
                }
            });
            let mut c = ConsumerCore::attach(ring).unwrap();
            let mut out = Vec::new();
            for i in 0..2u8 {
                assert_eq!(recv(&mut c, &mut out), msg(i));
            }
            t.join().unwrap();
        });
    }
}

/// The length word is the commit point: a producer that publishes a record and dies
/// before storing `tail` (modelled by `commit_deferred` and dropping the core) leaves a
/// record the consumer reads, and a successor that attaches while the consumer runs
/// walks `tail` past it — the record is delivered once and never overwritten.
#[test]
fn successor_producer_walks_past_an_uncounted_record() {
    model(|| {
        let mut heap = HeapRing::new(64);
        // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
        let ring = unsafe { heap.ring() };
        let heap = Arc::new(heap);
        {
            let mut dead = ProducerCore::attach(ring).unwrap();
            let mut g = dead.reserve(3).unwrap();
            g.as_mut_slice().copy_from_slice(&msg(0));
            g.commit_deferred(); // the length word is out, `tail` is not
        }
        let h2 = heap.clone();
        let t = loom::thread::spawn(move || {
            let _keep = h2;
            let mut p = ProducerCore::attach(ring).unwrap();
            send(&mut p, &msg(1));
        });
        let mut c = ConsumerCore::attach(ring).unwrap();
        let mut out = Vec::new();
        for i in 0..2u8 {
            assert_eq!(recv(&mut c, &mut out), msg(i));
        }
        t.join().unwrap();
    });
}
