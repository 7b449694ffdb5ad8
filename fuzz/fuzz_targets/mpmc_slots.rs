//! The MPMC slot queue over heap arrays whose head, tail, slot sequences, producer-table
//! intents and payloads come from the fuzzer, then pops, pushes, claims, unblocks and
//! scribbles. Masked indices must keep every access inside the arrays whatever the
//! words say (ASan sees each array as its own allocation); a corrupt sequence may hand
//! out garbage bytes or `Empty`/`Full`, never crash or loop forever.
#![no_main]

use crossbeam_utils::CachePadded;
use libfuzzer_sys::fuzz_target;
use shmkit_fuzz::Input;
use shmkit_ring::primitive::{AtomicU64, Ordering};
use shmkit_ring::raw::RawError;
use shmkit_ring::raw::mpmc::{Mpmc, MpmcHeader, stride};

/// This target's readings of the input.
trait Script {
    fn word(&mut self, near: u64) -> u64;
}

impl Script for Input<'_> {
    /// Near a position (sequence numbers that almost make sense) or anything.
    fn word(&mut self, near: u64) -> u64 {
        match self.byte() % 4 {
            0 => self.u64(),
            _ => near
                .wrapping_add(u64::from(self.byte() % 16))
                .wrapping_sub(8),
        }
    }
}

fn check(r: Result<(), RawError>) {
    match r {
        Ok(()) | Err(RawError::Empty | RawError::Full | RawError::Corrupted(_)) => {}
        Err(e) => panic!("unexpected {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cap = 2u64 << (inp.byte() % 5); // 2 .. 32 slots
    let item = 1 + usize::from(inp.byte() % 24);
    let table_len = 1 + u32::from(inp.byte() % 4);
    let hdr = Box::new(MpmcHeader::new(cap, item, table_len));
    let base = u64::from(inp.byte()) * cap;
    hdr.tail.store(inp.word(base), Ordering::Relaxed);
    hdr.head.store(inp.word(base), Ordering::Relaxed);
    let table: Vec<CachePadded<AtomicU64>> = (0..table_len)
        .map(|_| CachePadded::new(AtomicU64::new(inp.word(base))))
        .collect();
    let seqs: Vec<AtomicU64> = (0..cap)
        .map(|i| AtomicU64::new(inp.word(base + i)))
        .collect();
    let mut payload: Vec<u64> = (0..cap as usize * stride(item) / 8)
        .map(|_| inp.u64())
        .collect();
    // SAFETY: every array lives to the end of this closure and has the length
    // `Mpmc::new` requires (table_len entries, cap sequences, cap * stride bytes).
    let q = unsafe {
        Mpmc::new(
            &*hdr,
            table.as_ptr(),
            table_len,
            seqs.as_ptr(),
            payload.as_mut_ptr().cast(),
            cap,
            item,
        )
    };
    let mut out = vec![0u8; item];
    let msg = vec![0x5Au8; item];
    for _ in 0..64 {
        if inp.0.is_empty() {
            break;
        }
        match inp.byte() % 8 {
            0 | 1 => check(q.try_pop(&mut out)),
            2 => {
                let e = (inp.byte() % 5 < 4).then(|| u32::from(inp.byte()) % table_len);
                check(q.try_push(e, &msg));
            }
            3 => {
                // A claim dropped unpublished: the producer "dies".
                let e = Some(u32::from(inp.byte()) % table_len);
                if let Ok(c) = q.try_claim(e) {
                    if inp.byte() & 1 == 0 {
                        c.publish();
                    }
                }
            }
            4 => {
                let alive = inp.byte();
                let _ = q.try_unblock(|e| alive & (1 << (e % 8)) != 0);
            }
            5 => {
                let _ = q.claim_entry(u32::from(inp.byte()) % table_len);
                let _ = (
                    q.len(),
                    q.is_empty(),
                    q.has_data(),
                    q.has_space(),
                    q.abandoned(),
                );
            }
            6 => {
                let v = inp.u64();
                match inp.byte() % 3 {
                    0 => hdr.tail.store(v, Ordering::Relaxed),
                    1 => hdr.head.store(v, Ordering::Relaxed),
                    _ => table[usize::from(inp.byte()) % table.len()].store(v, Ordering::Relaxed),
                }
            }
            _ => {
                let i = usize::from(inp.byte()) % seqs.len();
                let v = inp.word(hdr.head.load(Ordering::Relaxed));
                seqs[i].store(v, Ordering::Relaxed);
            }
        }
    }
    drop(payload);
});
