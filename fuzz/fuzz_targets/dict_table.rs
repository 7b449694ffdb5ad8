//! The `Dict` table: a real dict segment whose data region (the active-area word, the
//! two lengths and counts, and both areas) is overwritten with fuzzer bytes before each
//! round of get / len / snapshot / insert / remove. The lock state is left alone (a
//! garbage lock word is a dead owner, taken over after a 10 ms liveness slice: correct,
//! but too slow to fuzz). Expected: `Corrupted`/`Codec`/`Full` errors or values; never a
//! panic or an access outside the two areas.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shmkit_segment::Segment;
use shmkit_sync::Dict;

/// Where the dict's data starts in the payload: the lock state (64 + 4 * 1024 bytes)
/// rounded up to 128 (`lock::DATA_OFFSET`, checked against the segment length below).
const DATA_OFFSET: usize = 4224;
const DICT_HEADER: usize = 64;
const CAPACITY: usize = 256;

struct Fixture {
    dict: Dict<u32, Vec<u8>>,
    seg: Segment,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let name = format!("shmkit-fuzz-dict-{}", std::process::id());
        let dict = Dict::create(&name, CAPACITY).expect("create the dict");
        let seg = Segment::open(&name).expect("open the dict's segment");
        // Both mappings stay valid; nothing is left in /dev/shm if the fuzzer stops.
        seg.unlink().expect("unlink");
        assert_eq!(seg.len(), DATA_OFFSET + DICT_HEADER + 2 * CAPACITY);
        Fixture { dict, seg }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&ops, rest)) = data.split_first() else {
        return;
    };
    let mut region = rest.to_vec();
    region.resize(DICT_HEADER + 2 * CAPACITY, 0);
    f.seg
        .write_bytes(DATA_OFFSET, &region)
        .expect("region fits");
    let key = u32::from(ops);
    let _ = f.dict.len();
    let _ = f.dict.get(&key);
    let _ = f.dict.snapshot();
    if ops & 1 == 1 {
        let _ = f.dict.insert(key, vec![ops; usize::from(ops % 64)]);
        let _ = f.dict.get(&key);
    }
    if ops & 2 == 2 {
        let _ = f.dict.remove(&key);
    }
    let _ = f.dict.is_empty();
});
