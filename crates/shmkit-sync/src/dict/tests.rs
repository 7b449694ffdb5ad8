//! Unit tests of the dict in one process: operations against a `HashMap` model, growth,
//! the bound, and corrupted segments (DESIGN rule 2). Cross-process behaviour and kills
//! are in `tests/cross_process.rs` and `tests/faults.rs`.
#![cfg(not(miri))] // shared memory segments

use std::collections::HashMap;

use proptest::prelude::*;
use shmkit_segment::Segment;
use shmkit_testing::{shm_names_starting, unique};

use super::*;
use crate::lock::DATA_OFFSET;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Point {
    x: i32,
    label: String,
}

#[test]
fn python_methods() {
    let d = Dict::<String, Point>::anonymous().unwrap();
    let p = |x| Point {
        x,
        label: format!("p{x}"),
    };
    assert_eq!(d.insert("a".into(), p(1)).unwrap(), None);
    assert_eq!(d.insert("a".into(), p(2)).unwrap(), Some(p(1)));
    assert_eq!(d.get(&"a".into()).unwrap(), Some(p(2)));
    assert_eq!(d.get_or(&"b".into(), p(0)).unwrap(), p(0));
    assert!(d.contains_key(&"a".into()).unwrap());
    assert!(!d.contains_key(&"b".into()).unwrap());
    assert_eq!(d.setdefault("b".into(), p(3)).unwrap(), p(3));
    assert_eq!(d.setdefault("b".into(), p(4)).unwrap(), p(3));
    d.update([("c".to_string(), p(5)), ("d".to_string(), p(6))])
        .unwrap();
    assert_eq!(d.len().unwrap(), 4);
    assert_eq!(d.pop(&"c".into(), p(0)).unwrap(), p(5));
    assert_eq!(d.pop(&"c".into(), p(0)).unwrap(), p(0));
    assert_eq!(d.remove(&"d".into()).unwrap(), Some(p(6)));
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(d.values().unwrap().len(), 2);
    assert_eq!(d.iter().unwrap().count(), 2);
    assert_eq!(d.snapshot().unwrap()["b"], p(3));
    let c = Dict::<u8, u64>::anonymous().unwrap();
    for _ in 0..5 {
        c.update_with(7, |n| n.unwrap_or(0) + 1).unwrap();
    }
    assert_eq!(c.get(&7).unwrap(), Some(5));
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
    assert_eq!(d.get(&"a".into()).unwrap(), None);
}

#[test]
fn grows_from_a_few_slots_to_many_entries_and_unlinks_old_tables() {
    let name = unique("grow");
    let d = Dict::<u64, u64>::create(&name).unwrap();
    let other = Dict::<u64, u64>::open(&name).unwrap();
    assert_eq!(d.generation(), 1);
    let first_capacity = d.capacity().unwrap();
    for i in 0..20_000 {
        assert_eq!(d.insert(i, i * 3).unwrap(), None);
    }
    assert!(d.generation() > 5, "generation {}", d.generation());
    assert!(d.capacity().unwrap() >= 20_000 && first_capacity < 100);
    // The other handle moves to the new generation at its next operation.
    assert_eq!(other.len().unwrap(), 20_000);
    for i in (0..20_000).step_by(97) {
        assert_eq!(other.get(&i).unwrap(), Some(i * 3));
    }
    assert_eq!(other.get(&20_000).unwrap(), None);
    // Only the current generation's table is linked.
    let tables = shm_names_starting(&format!("{name}.dict-"));
    assert_eq!(tables, [d.table_segment_name()]);
    drop(other);
    drop(d);
    assert!(shm_names_starting(&name).is_empty(), "left behind");
}

#[test]
fn churn_is_compacted_not_grown() {
    let d = Dict::<u64, Vec<u8>>::anonymous().unwrap();
    for round in 0..200u64 {
        for k in 0..50 {
            d.insert(k, vec![round as u8; 40]).unwrap();
        }
        for k in 0..25 {
            d.remove(&k).unwrap();
        }
    }
    assert_eq!(d.len().unwrap(), 25);
    // Replaced and removed records are dropped at each rebuild: the table stays small.
    let v = d.read(|t| Ok((t.slots, t.heap_bytes))).unwrap();
    assert!(v.0 <= 128 && v.1 <= 64 * 1024, "{v:?}");
    assert_eq!(d.get(&30).unwrap(), Some(vec![199; 40]));
}

#[test]
fn a_bounded_dict_refuses_new_keys_past_its_bound() {
    let d = Dict::<u32, String>::builder()
        .max_entries(100)
        .anonymous()
        .unwrap();
    let g = d.generation();
    for i in 0..100 {
        d.insert(i, "x".repeat(i as usize)).unwrap();
    }
    let err = d.insert(100, String::new()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Full {
                needed: 101,
                capacity: 100,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("at most 100"), "{err}");
    d.insert(5, "replaced".into()).unwrap();
    d.remove(&6).unwrap();
    d.insert(100, "fits again".into()).unwrap();
    assert_eq!(d.len().unwrap(), 100);
    assert_eq!(d.max_entries(), Some(100));
    // The slot table was sized for the bound: no growth for more slots.
    let slots = d.read(|t| Ok(t.slots)).unwrap();
    assert_eq!(slots, 256);
    assert!(
        d.generation() - g <= 3,
        "storage regrown {} times",
        d.generation() - g
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn behaves_like_a_hashmap(ops in prop::collection::vec((0u8..4, 0u16..64, any::<u32>()), 1..400)) {
        let d = Dict::<u16, u32>::anonymous().unwrap();
        let mut model = HashMap::new();
        for (op, k, v) in ops {
            match op {
                0 | 1 => prop_assert_eq!(d.insert(k, v).unwrap(), model.insert(k, v)),
                2 => prop_assert_eq!(d.remove(&k).unwrap(), model.remove(&k)),
                _ => prop_assert_eq!(d.get(&k).unwrap(), model.get(&k).copied()),
            }
            prop_assert_eq!(d.len().unwrap(), model.len());
        }
        let mut items = d.items().unwrap();
        items.sort();
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort();
        prop_assert_eq!(items, want);
    }
}

/// Overwrite bytes of the current table segment.
fn corrupt_table(d: &Dict<u64, u64>, at: u64, bytes: &[u8]) {
    d.read(|t| {
        t.segment().write_bytes(at as usize, bytes).unwrap();
        Ok(())
    })
    .unwrap();
}

fn assert_corrupted<T: std::fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::Corrupted { what: w, .. }) => assert!(w.contains(what), "{w}"),
        other => panic!("expected Corrupted({what}), got {other:?}"),
    }
}

#[test]
fn corrupted_slot_words_and_records_are_errors_not_crashes() {
    let d = Dict::<u64, u64>::anonymous().unwrap();
    d.insert(1, 10).unwrap();
    let (slots, slot) = d
        .read(|t| {
            let k = postcard::to_allocvec(&1u64).unwrap();
            Ok((t.slots, t.probe(hash::hash(&k), &k)?.hit.unwrap().slot))
        })
        .unwrap();
    let slot_at = table::HEADER + 8 * slot;
    let word = d
        .read(|t| Ok(t.segment().read::<u64>(slot_at as usize).unwrap()))
        .unwrap();
    // A slot word pointing past the heap.
    corrupt_table(&d, slot_at, &(word | ((1 << 40) - 1)).to_le_bytes());
    assert_corrupted(d.get(&1), "outside");
    assert_corrupted(d.insert(1, 11), "outside");
    corrupt_table(&d, slot_at, &word.to_le_bytes());
    assert_eq!(d.get(&1).unwrap(), Some(10));
    // A record whose lengths run past the heap.
    let record_at = table::HEADER + 8 * slots + (word & ((1 << 40) - 1)) * 8;
    corrupt_table(&d, record_at + 8, &u32::MAX.to_le_bytes());
    assert_corrupted(d.get(&1), "runs past");
    assert_corrupted(d.items(), "runs past");
    // Every slot full and none the key: the probe ends, with an error.
    let d = Dict::<u64, u64>::anonymous().unwrap();
    let slots = d.read(|t| Ok(t.slots)).unwrap();
    for i in 0..slots {
        corrupt_table(
            &d,
            table::HEADER + 8 * i,
            &(2u64 | (0xabc << 40)).to_le_bytes(),
        );
    }
    assert_corrupted(d.get(&1), "no empty slot");
    // A heap end mark out of range.
    let d = Dict::<u64, u64>::anonymous().unwrap();
    corrupt_table(&d, 48, &u64::MAX.to_le_bytes());
    assert_corrupted(d.insert(1, 1), "heap end mark");
    // `clear` never reads the old table: a way out of any corrupted one.
    d.clear().unwrap();
    d.insert(1, 1).unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(1));
}

#[test]
fn corrupted_geometry_and_control_are_errors_not_crashes() {
    let name = unique("geometry");
    let d = Dict::<u64, u64>::create(&name).unwrap();
    d.insert(1, 1).unwrap();
    let other = Dict::<u64, u64>::open(&name).unwrap();
    // Slots not a power of two: the table is refused when mapped.
    let t = Segment::open(&d.table_segment_name()).unwrap();
    t.write(16, &1000u64).unwrap();
    assert_corrupted(other.get(&1), "power of two");
    t.write(16, &64u64).unwrap();
    // A heap larger than the segment.
    t.write(24, &(1u64 << 40)).unwrap();
    assert_corrupted(other.get(&1), "do not fit");
    t.write(24, &4096u64).unwrap();
    assert_eq!(other.get(&1).unwrap(), Some(1));
    // A generation whose table does not exist: bounded retries, then an error.
    let seg = Segment::open(&name).unwrap();
    let generation_at = DATA_OFFSET;
    seg.write(generation_at, &77u64).unwrap();
    assert_corrupted(other.get(&1), "could not be mapped");
    seg.write(generation_at, &1u64).unwrap();
    // A table-name prefix that is no segment name.
    seg.write(DATA_OFFSET + 20, &500u32).unwrap();
    assert_corrupted(Dict::<u64, u64>::open(&name), "prefix");
    seg.write(DATA_OFFSET + 20, &0u32).unwrap();
    assert_corrupted(Dict::<u64, u64>::open(&name), "prefix");
    drop(t);
}

#[test]
fn inspect_shows_generation_entries_and_load() {
    let name = unique("inspect");
    let d = Dict::<u64, u64>::create(&name).unwrap();
    d.update((0..100).map(|i| (i, i))).unwrap();
    d.remove(&0).unwrap();
    let v = view::inspect_dict(&Segment::open(&name).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(v.entries, 99);
    assert_eq!(v.tombstones, 1);
    assert_eq!(v.generation, d.generation());
    assert_eq!(v.slots, 256);
    assert_eq!(v.capacity, 192);
    assert!((v.load_factor - 99.0 / 256.0).abs() < 1e-9);
    assert_eq!(v.max_entries, None);
    assert_eq!(v.table, d.table_segment_name());
}

/// A 64-bit word that is often a plausible length, offset or slot word.
fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..64,
        0u64..70_000,
        (0u64..1 << 24, 0u64..10_000).prop_map(|(tag, unit)| tag << 40 | unit),
        Just(u64::MAX),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// What `fuzz/fuzz_targets/dict_table.rs` does, with proptest's inputs: words of the
    /// current table (geometry, counters, slot words, records) overwritten, then every
    /// operation through the handle that made the table and through a fresh one that maps
    /// it: errors or values, never a panic, a hang or an access outside the table.
    #[test]
    fn corrupted_table_words_never_crash(
        ops in any::<u8>(),
        writes in prop::collection::vec((0usize..700, word()), 1..24),
    ) {
        let name = unique("words");
        let d = Dict::<u32, Vec<u8>>::create(&name).unwrap();
        for k in 0..40u32 {
            d.insert(k, vec![k as u8; k as usize % 9]).unwrap();
        }
        let table = Segment::open(&d.table_segment_name()).unwrap();
        for (i, w) in writes {
            // Mostly the header and the first slots and records.
            let at = (i * 8).min(table.len() - 8);
            table.write(at, &w).unwrap();
        }
        drop(table);
        let fresh = Dict::<u32, Vec<u8>>::open(&name);
        let key = u32::from(ops % 48);
        for d in [Some(&d), fresh.as_ref().ok()].into_iter().flatten() {
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
        }
        drop(fresh);
        drop(d);
        prop_assert!(shm_names_starting(&name).is_empty(), "left behind");
    }
}
