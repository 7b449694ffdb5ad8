//! The public SPSC ring over a real segment: a valid header (kind SpscRing, ready) and a
//! payload — the ring's control block and data area — whose bytes come from the
//! fuzzer; then `Consumer::open` and its non-blocking reads, `Producer::open` and a send,
//! and the inspector. Expected: `Corrupted` (or Empty/Full/Disconnected), never a
//! panic, a hang or an access outside the mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmkit_ring::spsc::{Consumer, Producer};
use shmkit_segment::{HEADER_SIZE, Kind, LAYOUT_VERSION, MAGIC, Segment};

const READY: u32 = u32::from_le_bytes(*b"REDY");
const RING_HEADER: usize = 384;

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    // The data area's size is implied by the file's size: 32 .. 2048 bytes, or (rarely)
    // a size that is not a valid capacity at all.
    let cap = if shape & 0x80 != 0 {
        usize::from(shape & 0x7f) * 8
    } else {
        32usize << (shape % 7)
    };
    let payload = RING_HEADER + cap;
    let mut file = vec![0u8; HEADER_SIZE];
    file[0..8].copy_from_slice(&MAGIC.to_le_bytes());
    file[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    file[12..16].copy_from_slice(&Kind::SpscRing.code().to_le_bytes());
    file[16..24].copy_from_slice(&(payload as u64).to_le_bytes());
    file[28..32].copy_from_slice(&READY.to_le_bytes());
    // The fuzzer's bytes land on the ring's control block first (positions at 0 and
    // 128, capacity at 256, side states at 280..288), then on the data area.
    let mut body = rest.to_vec();
    body.resize(payload, 0);
    file.extend_from_slice(&body);
    let name = format!("shmkit-fuzz-ring-{}", std::process::id());
    let path = format!("/dev/shm/{name}");
    std::fs::write(&path, &file).expect("write the fuzz segment");

    if let Ok(seg) = Segment::builder(&name).open() {
        let _ = shmkit_ring::inspect::inspect(&seg).map(|r| r.map(|r| r.problems()));
    }
    if let Ok(mut rx) = Consumer::open(&name) {
        let mut buf = Vec::new();
        for _ in 0..8 {
            if rx.try_recv_into(&mut buf).is_err() {
                break;
            }
        }
        let _ = rx.try_read_batch(8, |m| {
            std::hint::black_box(m.iter().map(|&b| u32::from(b)).sum::<u32>());
        });
        let _ = (rx.len(), rx.is_empty(), rx.is_disconnected());
        if let Ok(mut tx) = Producer::open(&name) {
            let _ = tx.try_send(b"fuzz");
            let _ = rx.try_recv_into(&mut buf);
        }
    }
    let _ = std::fs::remove_file(&path);
});
