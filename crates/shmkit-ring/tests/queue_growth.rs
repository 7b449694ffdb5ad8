//! An unbounded `Queue` (the default, like Python's `Queue()`) and one bounded in items
//! (`maxsize`, like `Queue(maxsize)`): `put` never blocks, memory follows what is
//! unconsumed and is given back once drained; the byte ring is an internal detail.
//! The kill tests of the growing ring are in `faults.rs`.

#![cfg(not(miri))] // real processes and syscalls

use shmkit_ring::{Error, Queue, TrySendError};
use shmkit_testing::unique;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

shmkit_process::test_support!();

const BOUND: Duration = Duration::from_secs(20);

/// Items put before any get (10 M in release builds, as issue 15 asks).
const MANY: u64 = if cfg!(debug_assertions) {
    1_000_000
} else {
    10_000_000
};

/// Bytes of memory the named segment holds in /dev/shm.
fn held_bytes(name: &str) -> u64 {
    std::fs::metadata(format!("/dev/shm/{name}"))
        .unwrap()
        .blocks()
        * 512
}

/// Put `MANY` items (`item(i)`) before any get, then take them all: the memory held
/// stays within 1.5x of the items' postcard encodings (small items share records), and
/// after the drain nothing beyond the empty queue's pages remains, nor, once dropped,
/// the segment. Prints the measured ratio.
fn many_items_then_drain<T>(what: &str, item: impl Fn(u64) -> T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + 'static,
{
    let name = unique("many");
    let q = Queue::<T>::builder().name(&name).create().unwrap();
    let start_bytes = held_bytes(&name);
    let mut encoded = 0u64;
    let mut buf = [0u8; 64];
    for i in 0..MANY {
        let it = item(i);
        // try_put: a growing queue is never full.
        q.try_put(&it).unwrap();
        encoded += postcard::to_slice(&it, &mut buf).unwrap().len() as u64;
    }
    assert_eq!(q.len() as u64, MANY);
    let held = held_bytes(&name) - start_bytes;
    let ratio = held as f64 / encoded as f64;
    eprintln!(
        "{MANY} {what} items: {encoded} encoded bytes, {held} bytes held ({ratio:.3}x encoded)"
    );
    assert!(held >= encoded, "the items are in memory somewhere");
    assert!(
        ratio <= 1.5,
        "{held} bytes held for {encoded} encoded bytes ({ratio:.3}x)"
    );
    for i in 0..MANY {
        assert_eq!(q.try_get().unwrap(), item(i));
    }
    assert!(q.is_empty());
    let after = held_bytes(&name);
    eprintln!("after the drain: {after} bytes held (at creation {start_bytes})");
    assert!(
        after <= start_bytes + (64 << 10),
        "after the drain {after} bytes held (at creation {start_bytes})"
    );
    drop(q);
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

#[test]
fn a_default_queue_never_blocks_in_put_and_gives_memory_back_once_drained() {
    many_items_then_drain("u64", |i| i);
}

#[test]
fn small_strings_are_held_within_one_and_a_half_times_their_encoding() {
    many_items_then_drain("String", |i| format!("item {i}"));
}

#[test]
fn queue_new_is_unbounded_and_anonymous() {
    let q = Queue::<String>::new().unwrap();
    for i in 0..50_000 {
        q.try_put(&format!("line {i} of a file that nobody reads yet"))
            .unwrap();
    }
    assert_eq!(
        q.get_timeout(BOUND).unwrap(),
        "line 0 of a file that nobody reads yet"
    );
    assert_eq!(q.len(), 49_999);
    assert!(!q.is_full());
}

#[test]
fn maxsize_bounds_the_queue_in_items() {
    let q = Queue::<Vec<u8>>::builder().maxsize(3).create().unwrap();
    let _consumer = q.clone(); // someone who could make room: `put` waits, bounded
    for len in [0, 10_000, 5] {
        q.try_put(&vec![7; len]).unwrap();
    }
    assert!(q.is_full());
    assert!(matches!(q.try_put(&vec![]), Err(TrySendError::Full)));
    assert!(matches!(
        q.put_timeout(&vec![], Duration::from_millis(10)),
        Err(Error::Timeout)
    ));
    assert_eq!(q.get_timeout(BOUND).unwrap().len(), 0);
    q.put_timeout(&vec![1], BOUND).unwrap();
    assert_eq!(q.len(), 3);
}

/// A producer child blocked on a full `maxsize` queue resumes when the parent gets.
fn put_ten(q: Queue<u32>) -> u32 {
    for i in 0..10 {
        q.put_timeout(&i, BOUND).unwrap();
    }
    10
}

#[test]
fn a_producer_waits_at_maxsize_and_resumes_when_an_item_is_taken() {
    let q = Queue::<u32>::builder().maxsize(2).create().unwrap();
    let mut child = shmkit_process::spawn(put_ten, q.clone()).unwrap();
    for i in 0..10 {
        assert_eq!(q.get_timeout(BOUND).unwrap(), i);
        assert!(q.len() <= 2);
    }
    assert_eq!(child.join_timeout(BOUND).unwrap(), 10);
}

#[test]
fn a_byte_capacity_is_rounded_up_not_refused() {
    let name = unique("round");
    let q = Queue::<u64>::create(&name, 1000).unwrap();
    assert_eq!(q.max_item_bytes(), 1024 / 2 - 8);
    let fixed = Queue::<u64>::builder()
        .capacity_bytes(3000)
        .create()
        .unwrap();
    assert_eq!(fixed.max_item_bytes(), 4096 / 2 - 8);
    assert!(matches!(
        Queue::<u64>::builder().capacity_bytes(usize::MAX).create(),
        Err(Error::InvalidCapacity { .. })
    ));
}

/// Small items share records in a fixed ring too: a 4 KiB ring holds 1000 `u64` items
/// (8-byte records would have held 255), and `shmkit inspect` counts them without
/// calling the ring corrupted, its depth including the record still open.
#[test]
fn a_fixed_ring_packs_small_items_and_inspect_agrees() {
    use shmkit_ring::inspect::{Report, inspect};
    let name = unique("packed-fixed");
    let q = Queue::<u64>::create(&name, 4096).unwrap();
    for i in 0..1000 {
        q.try_put(&i).unwrap();
    }
    let seg = shmkit_segment::Segment::open(&name).unwrap();
    let Some(Report::Queue(view)) = inspect(&seg).unwrap() else {
        panic!("a queue");
    };
    assert!(view.problems.is_empty(), "{:?}", view.problems);
    assert!(view.ring.problems.is_empty(), "{:?}", view.ring.problems);
    assert_eq!(view.ring.depth_messages, 1000);
    assert!(
        view.ring.depth_bytes >= 1000 * 2,
        "{}",
        view.ring.depth_bytes
    );
    assert!(view.ring.depth_bytes <= 4096, "{}", view.ring.depth_bytes);
    for i in 0..1000 {
        assert_eq!(q.try_get().unwrap(), i);
    }
    assert!(q.is_empty());
}
