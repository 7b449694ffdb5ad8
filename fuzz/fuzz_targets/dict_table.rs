//! The `Dict` table: a real dict whose current table segment (header with its geometry
//! and counters, slot words, record heap) is overwritten with fuzzer bytes before each
//! round of len / get / contains_key / items / insert / remove / update (which grows from
//! the corrupted table), through the handle that made the table (its geometry checked
//! and kept when mapped) and through a fresh handle that maps the corrupted table (its
//! geometry checked now). The lock state and control region are left alone (a garbage
//! lock word is a dead owner, taken over after a 10 ms liveness slice: correct, but too
//! slow to fuzz). Expected: `Corrupted`/`Codec`/`Full` errors or values; never a panic,
//! a hang, or an access outside the table.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shmkit_segment::Segment;
use shmkit_sync::Dict;

struct Fixture {
    name: String,
    dict: Dict<u32, Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let name = format!("shmkit-fuzz-dict-{}", std::process::id());
        let dict = Dict::create(&name).expect("create the dict");
        Fixture { name, dict }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&ops, rest)) = data.split_first() else {
        return;
    };
    // A fresh, valid table each round (a new generation), with a few entries.
    f.dict.clear().expect("clear: needs only the lock and the control region");
    for k in 0..8u32 {
        let _ = f.dict.insert(k, vec![k as u8; k as usize]);
    }
    let table = Segment::open(&f.dict.table_segment_name()).expect("map the table");
    let n = rest.len().min(table.len());
    table.write_bytes(0, &rest[..n]).expect("within the table");
    drop(table);
    let fresh = Dict::<u32, Vec<u8>>::open(&f.name);
    let key = u32::from(ops % 16);
    for d in [Some(&f.dict), fresh.as_ref().ok()].into_iter().flatten() {
        let _ = d.len();
        let _ = d.get(&key);
        let _ = d.contains_key(&key);
        let _ = d.items();
        if ops & 1 == 1 {
            let _ = d.insert(key, vec![ops; usize::from(ops % 64)]);
            let _ = d.get(&key);
        }
        if ops & 2 == 2 {
            let _ = d.remove(&key);
        }
        if ops & 4 == 4 {
            let _ = d.update((100..300).map(|k| (k, vec![ops; 3])));
            let _ = d.get(&150);
        }
        let _ = d.is_empty();
    }
});
