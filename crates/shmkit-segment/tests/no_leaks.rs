//! A thousand create/open/drop cycles leave no descriptor and no mapping behind.
//!
//! Alone in its test binary, with a single test: descriptors and mappings are
//! process-wide, and a sibling test running in a parallel thread of the same binary (the
//! 64-process create race, children with pipes) would hold some of its own for a moment.
//! With nothing else running here the count can be exact, so a leak of one descriptor per
//! cycle fails by a thousand, and a leak of a single one fails too.
#![cfg(not(miri))] // files, mappings and /proc

mod common;

use std::collections::BTreeMap;

use common::{Cleanup, unique};
use shmkit_segment::Segment;

/// Every open descriptor of this process, with what it points at.
fn descriptors() -> BTreeMap<String, String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        // The read_dir's own descriptor is listed while it is open; it points at
        // /proc/<pid>/fd, and is closed again by the time the listing is returned.
        .filter(|(_, target)| !target.ends_with("/fd"))
        .collect()
}

/// The mappings of shared memory (named or memfd) this process holds.
fn shared_mappings() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .filter(|l| l.contains("/dev/shm/") || l.contains("memfd:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_thousand_create_open_drop_cycles_leak_no_descriptor_and_no_mapping() {
    let name = unique("fdleak");
    let _c = Cleanup(name.clone());
    // Warm up once: lazy statics (the liveness registry, the page size) are made on first use.
    {
        let seg = Segment::create(&name, 64).unwrap();
        drop(seg.hold_liveness(1).unwrap());
        drop(Segment::anonymous(64).unwrap().handle().open().unwrap());
    }
    let (fds_before, maps_before) = (descriptors(), shared_mappings());
    for _ in 0..1000 {
        let seg = Segment::create(&name, 64).unwrap();
        let other = Segment::open(&name).unwrap();
        let guard = other.hold_liveness(1).unwrap();
        assert!(seg.is_alive(1).unwrap());
        drop(guard);
        drop(other);
        drop(seg);
        let anon = Segment::anonymous(64).unwrap();
        drop(anon.handle().open().unwrap());
    }
    let (fds_after, maps_after) = (descriptors(), shared_mappings());
    let opened: Vec<_> = fds_after
        .iter()
        .filter(|(fd, target)| fds_before.get(*fd) != Some(target))
        .collect();
    assert!(
        opened.is_empty(),
        "{} descriptors before, {} after; new or changed: {opened:?}",
        fds_before.len(),
        fds_after.len()
    );
    assert_eq!(maps_before, maps_after, "shared mappings left behind");
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}
