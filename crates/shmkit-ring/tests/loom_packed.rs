//! loom model of a `Queue`'s packed records (raw/packed.rs): appending to the open
//! record, closing it, bare records for large items, and the consumer's position inside
//! a record — with the producer and consumer running at once, and with a producer or a
//! consumer that dies at the new steps and a successor that takes over. Every item is
//! delivered once, in order, intact; none is lost and none read twice.
//! Run: `RUSTFLAGS="--cfg shmkit_loom" cargo test -p shmkit-ring --release --test loom_packed`.
#![cfg(shmkit_loom)]

use loom::sync::Arc;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::packed::{self, PackConsumer, PackLimits, PackProducer};
use shmkit_ring::raw::spsc::{HeapRing, Ring};

/// Records of at most 8 payload bytes, frames of at most 4 packed: 1- and 2-byte items
/// share a record (frames of 2 and 3 bytes), a 5-byte item gets a bare record.
const LIMITS: PackLimits = PackLimits { record: 8, item: 4 };

fn item(i: u8, len: usize) -> Vec<u8> {
    vec![i + 1; len]
}

/// Bounded preemptions keep the spin-retry loops' state space small (loom's own advice).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

fn put(p: &mut PackProducer, bytes: &[u8]) {
    loop {
        match p.reserve(bytes.len()) {
            Ok(mut g) => {
                g.as_mut_slice().copy_from_slice(bytes);
                g.commit();
                return;
            }
            Err(RawError::Full) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn take(c: &mut PackConsumer) -> Vec<u8> {
    loop {
        match c.read() {
            Ok(Some(g)) => {
                let v = g.to_vec();
                g.release();
                return v;
            }
            Ok(None) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Run `produce` on a second thread and take `expect` on this one, then check that
/// nothing more is there.
fn run(produce: impl FnOnce(Ring) + Send + 'static, expect: Vec<Vec<u8>>) {
    let mut heap = HeapRing::new(64);
    // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
    let ring = unsafe { heap.ring() };
    let heap = Arc::new(heap);
    let h2 = heap.clone();
    let t = loom::thread::spawn(move || {
        let _keep = h2;
        produce(ring);
    });
    let mut c = PackConsumer::attach(ring).unwrap();
    for want in &expect {
        assert_eq!(&take(&mut c), want);
    }
    t.join().unwrap();
    assert!(
        c.read().unwrap().is_none(),
        "an item read twice or invented"
    );
    assert!(packed::is_empty(&ring));
    drop(heap);
}

/// [`run`] with one producer that puts `items`, in order, and lives.
fn run_one_producer(items: Vec<Vec<u8>>) {
    let sent = items.clone();
    run(
        move |ring| {
            let mut p = PackProducer::attach(ring, LIMITS).unwrap();
            for it in &sent {
                put(&mut p, it);
            }
        },
        items,
    );
}

/// Open, append, close for a large item, a bare record: FIFO across the three kinds.
#[test]
fn append_close_and_bare_records_in_order() {
    model(|| {
        let items = vec![item(0, 1), item(1, 2), item(2, 5)];
        run_one_producer(items);
    });
}

/// A record reaches its bound: it is closed and the next item opens a new one, while the
/// consumer may be reading inside the first.
#[test]
fn a_full_record_is_closed_and_the_next_opens() {
    model(|| {
        let items = vec![item(0, 2), item(1, 2), item(2, 1)];
        run_one_producer(items);
    });
}

/// A producer killed after writing an appended item but before the length store: the
/// item was never committed; the successor attaches, finds the open record and appends
/// over the dead bytes. Then a producer killed between closing a record and starting
/// the next: the successor starts a new record after it.
#[test]
fn successors_continue_after_producers_die_mid_append_and_after_a_close() {
    model(|| {
        let items = vec![item(0, 1), item(1, 2), item(3, 1)];
        let sent = items.clone();
        run(
            move |ring| {
                let mut dead = PackProducer::attach(ring, LIMITS).unwrap();
                put(&mut dead, &sent[0]);
                let mut g = dead.reserve(1).unwrap();
                assert!(g.appends());
                g.as_mut_slice().copy_from_slice(&item(9, 1));
                drop(g); // killed before the length store
                drop(dead);
                let mut next = PackProducer::attach(ring, LIMITS).unwrap();
                assert!(next.is_open(), "the open record is continued");
                put(&mut next, &sent[1]);
                next.close();
                drop(next); // killed between closing and the next record
                let mut last = PackProducer::attach(ring, LIMITS).unwrap();
                assert!(!last.is_open());
                put(&mut last, &sent[2]);
            },
            items,
        );
    });
}

/// A consumer killed after reading an item but before storing its position did not take
/// it: the successor reads it (once), and the rest after it.
#[test]
fn a_consumer_killed_before_storing_its_position_took_nothing() {
    model(|| {
        let mut heap = HeapRing::new(64);
        // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
        let ring = unsafe { heap.ring() };
        let heap = Arc::new(heap);
        let h2 = heap.clone();
        let items = vec![item(0, 1), item(1, 2), item(2, 1)];
        let sent = items.clone();
        let t = loom::thread::spawn(move || {
            let _keep = h2;
            let mut p = PackProducer::attach(ring, LIMITS).unwrap();
            for it in &sent {
                put(&mut p, it);
            }
        });
        {
            let mut dead = PackConsumer::attach(ring).unwrap();
            assert_eq!(take(&mut dead), items[0]);
            loop {
                match dead.read().unwrap() {
                    // Read, not released: killed before the position store.
                    Some(g) => {
                        assert_eq!(&*g, &items[1][..]);
                        break;
                    }
                    None => loom::thread::yield_now(),
                }
            }
        }
        let mut c = PackConsumer::attach(ring).unwrap();
        assert_eq!(take(&mut c), items[1]);
        assert_eq!(take(&mut c), items[2]);
        t.join().unwrap();
        assert!(c.read().unwrap().is_none());
        drop(heap);
    });
}

/// The sleep/wake protocol over packed records: the consumer sleeps *without* a timeout
/// on `packed::ready`, so a lost wake-up (for an append, not a new record) is a deadlock.
#[test]
fn no_lost_wakeup_for_an_append() {
    model(|| {
        let mut heap = HeapRing::new(64);
        // SAFETY: `heap` is kept alive by the Arc below until both threads are joined.
        let ring = unsafe { heap.ring() };
        let heap = Arc::new(heap);
        let mut p = PackProducer::attach(ring, LIMITS).unwrap();
        put(&mut p, &item(0, 1));
        let mut c = PackConsumer::attach(ring).unwrap();
        assert_eq!(take(&mut c), item(0, 1));
        let h2 = heap.clone();
        let t = loom::thread::spawn(move || {
            let _keep = h2;
            put(&mut p, &item(1, 1));
            shmkit_ring::WaitStrategy::Blocking.notify(&ring.header().meta.data_wake);
        });
        loop {
            match c.read().unwrap() {
                Some(g) => {
                    assert_eq!(&*g, &item(1, 1)[..]);
                    g.release();
                    break;
                }
                None => shmkit_ring::wait::sleep_until_woken(&ring.header().meta.data_wake, || {
                    packed::ready(&ring)
                }),
            }
        }
        t.join().unwrap();
    });
}
