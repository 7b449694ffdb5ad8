//! The SPSC core over a heap ring whose positions, counters and data bytes come from the
//! fuzzer, then a script of operations interleaved with scribbles (what a hostile or
//! half-dead peer could store at any moment). Expected: `Corrupted`, `Empty`, `Full`,
//! `TooLarge` or messages within the limits; never a panic or an out-of-bounds access
//! (the data area is its own allocation, so ASan sees any byte past it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmkit_fuzz::Input;
use shmkit_ring::primitive::Ordering;
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::spsc::{ConsumerCore, ProducerCore, Ring, SpscHeader};

/// This target's readings of the input.
trait Script {
    fn pos(&mut self) -> u64;
}

impl Script for Input<'_> {
    /// A position: often small and aligned (so the script gets past attach), sometimes
    /// anything.
    fn pos(&mut self) -> u64 {
        match self.byte() % 4 {
            0 => self.u64(),
            1 => self.u64() & !7,
            _ => u64::from(self.byte()) * 8,
        }
    }
}

fn check(r: Result<(), RawError>) {
    match r {
        Ok(()) | Err(RawError::Empty | RawError::Full | RawError::Corrupted(_)) => {}
        Err(RawError::TooLarge { len, max }) => assert!(len > max),
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cap = 32u64 << (inp.byte() % 6); // 32 .. 1024 bytes
    let hdr = Box::new(SpscHeader::new(cap));
    hdr.tail.pos.store(inp.pos(), Ordering::Relaxed);
    hdr.head.pos.store(inp.pos(), Ordering::Relaxed);
    hdr.tail.count.store(inp.u64(), Ordering::Relaxed);
    hdr.head.count.store(inp.u64(), Ordering::Relaxed);
    // The data area: exactly `cap` bytes, filled with fuzzer words.
    let mut area: Vec<u64> = (0..cap / 8)
        .map(|_| match inp.byte() % 4 {
            0 => inp.u64(),
            1 => u64::MAX, // the padding marker
            _ => u64::from(inp.byte()),
        })
        .collect();
    let data = area.as_mut_ptr().cast::<u8>();
    // SAFETY: `hdr` and `area` live to the end of this closure, longer than every role;
    // the area is `cap` bytes of u64s (8-aligned) and `cap` is a valid capacity.
    let ring = unsafe { Ring::new(&*hdr, data, cap) };
    let mut cons = ConsumerCore::attach(ring).ok();
    let mut prod = ProducerCore::attach(ring).ok();
    let max = ring.max_message();
    let mut out = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..64 {
        if inp.0.is_empty() {
            break;
        }
        match inp.byte() % 10 {
            0 | 1 => {
                if let Some(c) = cons.as_mut() {
                    let r = c.try_recv(&mut out);
                    if r.is_ok() {
                        assert!(out.len() <= max);
                    }
                    check(r);
                }
            }
            2 => {
                if let Some(c) = cons.as_mut() {
                    batch.clear();
                    let n = c.try_recv_batch(&mut batch, 4);
                    if let Ok(n) = n {
                        assert_eq!(n, batch.len());
                        assert!(batch.iter().all(|m| m.len() <= max));
                    }
                    check(n.map(drop));
                }
            }
            3 => {
                if let Some(c) = cons.as_mut() {
                    check(c.read_batch(4, |m| assert!(m.len() <= max)).map(drop));
                }
            }
            4 => {
                if let Some(c) = cons.as_mut() {
                    // A grant read in place, then (maybe) dropped without release.
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
            5 => {
                if let Some(p) = prod.as_mut() {
                    let len = usize::from(inp.byte()) % (max + 8);
                    check(p.try_send(&vec![0xA5; len]));
                }
            }
            6 => {
                // Scribble a position.
                let v = inp.pos();
                if inp.byte() & 1 == 0 {
                    hdr.tail.pos.store(v, Ordering::Relaxed);
                } else {
                    hdr.head.pos.store(v, Ordering::Relaxed);
                }
            }
            7 => {
                // Scribble a length word (through the same pointer the ring uses).
                let i = usize::from(inp.byte()) % area.len();
                let v = inp.pos();
                // SAFETY: `i < cap / 8`, inside the area; no grant is alive here.
                unsafe { data.cast::<u64>().add(i).write(v) };
            }
            8 => {
                cons = ConsumerCore::attach(ring).ok();
            }
            _ => {
                prod = ProducerCore::attach(ring).ok();
                let _ = (ring.used_bytes(), ring.message_count(), ring.has_data());
            }
        }
    }
    drop((cons, prod));
    drop(area);
});
