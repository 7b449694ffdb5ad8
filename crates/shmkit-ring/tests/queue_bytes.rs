//! A `Queue` of byte buffers (`Vec<u8>`, `Box<[u8]>`, `String`, `Box<str>`) moves them
//! as bytes (queue/codec.rs), with the bytes postcard writes: every size, across the
//! ring's wrap, through a child process, next to items of other types.

#![cfg(not(miri))] // real processes and syscalls

use serde::{Deserialize, Serialize};
use shmkit_ring::Queue;
use std::time::Duration;

shmkit_process::test_support!();

const BOUND: Duration = Duration::from_secs(20);

/// Sizes around postcard's varint steps (1, 2 and 3 bytes of length) and the ring's
/// record alignment, up to a MiB.
const SIZES: [usize; 13] = [
    0,
    1,
    7,
    8,
    9,
    127,
    128,
    129,
    16383,
    16384,
    65536,
    300_000,
    1 << 20,
];

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

#[test]
fn byte_buffers_of_every_size_round_trip_in_a_fixed_ring() {
    // 4 MiB: a MiB item fits (at most half the ring), and 3 rounds wrap the ring.
    let q = Queue::<Vec<u8>>::anonymous(4 << 20).unwrap();
    for round in 0..3u8 {
        for n in SIZES {
            let v = pattern(n, round);
            q.put(&v).unwrap();
            assert_eq!(
                q.get_timeout(BOUND).unwrap(),
                v,
                "Vec<u8> of {n}, round {round}"
            );
        }
    }
    let q = Queue::<Box<[u8]>>::anonymous(4 << 20).unwrap();
    for n in SIZES {
        let v = pattern(n, 9).into_boxed_slice();
        q.put(&v).unwrap();
        assert_eq!(q.get_timeout(BOUND).unwrap(), v, "Box<[u8]> of {n}");
    }
}

#[test]
fn strings_round_trip_in_a_growing_queue() {
    let q = Queue::<String>::new().unwrap();
    let b = Queue::<Box<str>>::new().unwrap();
    for n in SIZES {
        let s: String = "aé€😀".chars().cycle().take(n / 2).collect();
        q.put(&s).unwrap();
        b.put(&s.clone().into_boxed_str()).unwrap();
        assert_eq!(q.get_timeout(BOUND).unwrap(), s);
        assert_eq!(&*b.get_timeout(BOUND).unwrap(), s.as_str());
    }
}

/// A struct with a byte field: the general path (encoded outside the lock, on the
/// stack when small, in the per-thread buffer when not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Frame {
    id: u32,
    pixels: Vec<u8>,
    label: String,
}

#[test]
fn structs_with_byte_fields_round_trip_small_and_large() {
    let q = Queue::<Frame>::anonymous(4 << 20).unwrap();
    for n in SIZES {
        let f = Frame {
            id: n as u32,
            pixels: pattern(n, 3),
            label: format!("frame {n}"),
        };
        q.put(&f).unwrap();
        assert_eq!(q.get_timeout(BOUND).unwrap(), f);
    }
}

fn echo_lengths(args: (Queue<Vec<u8>>, Queue<u64>)) {
    let (items, lens) = args;
    for n in SIZES {
        let v = items.get_timeout(BOUND).expect("item");
        assert_eq!(v, pattern(n, 5), "child: item of {n}");
        lens.put(&(v.len() as u64)).expect("len");
    }
}

#[test]
fn byte_buffers_cross_to_a_child_process() {
    let items = Queue::<Vec<u8>>::anonymous(4 << 20).unwrap();
    let lens = Queue::<u64>::anonymous(4096).unwrap();
    let mut child = shmkit_process::spawn(echo_lengths, (items.clone(), lens.clone())).unwrap();
    for n in SIZES {
        items.put(&pattern(n, 5)).unwrap();
    }
    for n in SIZES {
        assert_eq!(lens.get_timeout(BOUND).unwrap(), n as u64);
    }
    child.join_timeout(BOUND).unwrap();
}
