//! A `Queue`'s packed records (raw/packed.rs) over a heap ring whose positions, item
//! position, counters and data bytes come from the fuzzer, then a script of puts, gets,
//! closes, re-attaches and scribbles (what a hostile or half-dead peer could store at
//! any moment): length words with the `FRAMES`/`CLOSED` bits in any combination, frames
//! whose varints run past their record, an `item_pos` anywhere. Expected: `Corrupted`,
//! `Full`, `TooLarge`, nothing, or items within the limits; never a panic or an
//! out-of-bounds access (the data area is its own allocation, so ASan sees any byte
//! past it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmkit_fuzz::Input;
use shmkit_ring::primitive::Ordering;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::packed::{self, CLOSED, FRAMES, PackConsumer, PackLimits, PackProducer};
use shmkit_ring::raw::spsc::{PUBLISHED, Ring, SpscHeader};

/// This target's readings of the input.
trait Script {
    fn pos(&mut self) -> u64;
    fn word(&mut self) -> u64;
}

impl Script for Input<'_> {
    /// A position: often small (aligned or not), sometimes anything.
    fn pos(&mut self) -> u64 {
        match self.byte() % 4 {
            0 => self.u64(),
            1 => u64::from(self.byte()),
            _ => u64::from(self.byte()) * 8,
        }
    }
    /// A length word: a record of some kind and a small length, or anything.
    fn word(&mut self) -> u64 {
        let kind = match self.byte() % 6 {
            0 => 0,
            1 => PUBLISHED,
            2 => PUBLISHED | FRAMES,
            3 => PUBLISHED | FRAMES | CLOSED,
            4 => PUBLISHED | CLOSED,
            _ => return self.u64(),
        };
        kind | u64::from(self.byte())
    }
}

fn check(r: Result<(), RawError>) {
    match r {
        Ok(()) | Err(RawError::Full | RawError::Corrupted(_)) => {}
        Err(RawError::TooLarge { len, max }) => assert!(len > max),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cap = 32u64 << (inp.byte() % 6); // 32 .. 1024 bytes
    let limits = if inp.byte() & 1 == 0 {
        PackLimits::for_capacity(cap)
    } else {
        PackLimits {
            record: u64::from(inp.byte()),
            item: u64::from(inp.byte()),
        }
    };
    let hdr = Box::new(SpscHeader::new(cap));
    hdr.tail.pos.store(inp.pos(), Ordering::Relaxed);
    hdr.head.pos.store(inp.pos(), Ordering::Relaxed);
    hdr.head.item_pos.store(inp.pos(), Ordering::Relaxed);
    hdr.tail.count.store(inp.u64(), Ordering::Relaxed);
    hdr.head.count.store(inp.u64(), Ordering::Relaxed);
    // The data area: exactly `cap` bytes, filled with fuzzer words.
    let mut area: Vec<u64> = (0..cap / 8)
        .map(|_| match inp.byte() % 4 {
            0 => inp.u64(),
            1 => u64::MAX, // the padding marker
            2 => inp.word(),
            _ => u64::from(inp.byte()),
        })
        .collect();
    let data = area.as_mut_ptr().cast::<u8>();
    // SAFETY: `hdr` and `area` live to the end of this closure, longer than every role;
    // the area is `cap` bytes of u64s (8-aligned) and `cap` is a valid capacity.
    let ring = unsafe { Ring::new(&*hdr, data, cap) };
    let mut cons = PackConsumer::attach(ring).ok();
    let mut prod = PackProducer::attach(ring, limits).ok();
    let max = ring.max_message();
    for _ in 0..64 {
        if inp.0.is_empty() {
            break;
        }
        match inp.byte() % 10 {
            0..=2 => {
                if let Some(c) = cons.as_mut() {
                    // An item read in place, then (maybe) dropped without release.
                    let keep = inp.byte() & 1 == 0;
                    match c.read() {
                        Ok(Some(g)) => {
                            assert!(g.len() <= max);
                            let _sum: u32 = g.iter().map(|&b| u32::from(b)).sum();
                            if keep {
                                g.release();
                            }
                        }
                        Ok(None) => {}
                        Err(e) => check(Err(e)),
                    }
                }
            }
            3 | 4 => {
                if let Some(p) = prod.as_mut() {
                    let len = usize::from(inp.byte()) % (max + 8);
                    let commit = inp.byte() % 8 != 0;
                    match p.reserve(len) {
                        Ok(mut g) => {
                            assert_eq!(g.as_mut_slice().len(), len);
                            g.as_mut_slice().fill(0xA5);
                            if commit {
                                g.commit();
                            }
                        }
                        Err(e) => check(Err(e)),
                    }
                }
            }
            5 => {
                if let Some(p) = prod.as_mut() {
                    p.close();
                }
            }
            6 => {
                // Scribble a position.
                let v = inp.pos();
                match inp.byte() % 3 {
                    0 => hdr.tail.pos.store(v, Ordering::Relaxed),
                    1 => hdr.head.pos.store(v, Ordering::Relaxed),
                    _ => hdr.head.item_pos.store(v, Ordering::Relaxed),
                }
            }
            7 => {
                // Scribble a length word or frame bytes (through the ring's pointer).
                let i = usize::from(inp.byte()) % area.len();
                let v = inp.word();
                // SAFETY: `i < cap / 8`, inside the area; no grant is alive here.
                unsafe { data.cast::<u64>().add(i).write(v) };
            }
            8 => {
                cons = PackConsumer::attach(ring).ok();
            }
            _ => {
                prod = PackProducer::attach(ring, limits).ok();
                let _ = (
                    packed::ready(&ring),
                    packed::is_empty(&ring),
                    packed::drained_end(&ring),
                    packed::open_record_len(&ring, hdr.tail.pos.load(Ordering::Relaxed)),
                );
            }
        }
    }
    drop((cons, prod));
    drop(area);
});
