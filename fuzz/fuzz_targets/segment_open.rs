//! Header validation: a file in /dev/shm whose every byte comes from the fuzzer, opened
//! as a shmkit segment, then read by the ring and lock inspectors (what `shmkit inspect`
//! runs on any segment it finds). Expected: a typed error (`Corrupted`, `Mismatch`,
//! `NotReady`) or a report; never a panic, a hang or an access past the mapping.
//! The first input byte picks how the file is built: raw bytes, or a valid header
//! (magic, version, ready) with fuzzer-chosen kind, sizes and payload, so the fuzzer
//! reaches the inspectors quickly.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shmkit_segment::{HEADER_SIZE, LAYOUT_VERSION, MAGIC, Segment};

const READY: u32 = u32::from_le_bytes(*b"REDY");

fn name() -> String {
    format!("shmkit-fuzz-open-{}", std::process::id())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    if mode & 1 == 1 && file.len() >= 24 {
        // A well-formed header around fuzzer-chosen kind and payload-size fields.
        let kind = u32::from(file[0] % 20);
        let payload = u64::from(u16::from_le_bytes([file[1], file[2]]));
        let body = file.split_off(8);
        let mut h = vec![0u8; HEADER_SIZE];
        h[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        h[8..12].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&kind.to_le_bytes());
        h[16..24].copy_from_slice(&payload.to_le_bytes());
        h[28..32].copy_from_slice(&READY.to_le_bytes());
        // Lock kinds need 4 KiB of lock state: stretch the body so they get past it.
        let mut body = body;
        if mode & 2 == 2 {
            let want = (payload as usize).max(body.len());
            body.resize(want, 0);
        }
        h.extend_from_slice(&body);
        file = h;
    }
    let name = name();
    let path = format!("/dev/shm/{name}");
    std::fs::write(&path, &file).expect("write the fuzz segment");
    if let Ok(seg) = Segment::builder(&name).open_timeout(Duration::ZERO).open() {
        let _ = (seg.kind(), seg.fingerprint(), seg.len(), seg.creator());
        let _ = shmkit_ring::inspect::inspect(&seg).map(|r| r.map(|r| r.problems()));
        let _ = shmkit_sync::inspect::inspect(&seg);
    }
    let _ = std::fs::remove_file(&path);
});
