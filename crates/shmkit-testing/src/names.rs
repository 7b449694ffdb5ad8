//! Segment names unique to one test, and the check that a test left none behind.

use crate::primitive::{AtomicU32, Ordering};

/// A segment name no other test, test binary or test run uses:
/// `shmkit-test-<tag>-<pid>-<n>`, `n` counting this process's calls. Every shmkit test
/// segment starts with `shmkit-test-`, so a leftover is easy to spot in `/dev/shm`.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmkit-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Panics if the segment `name` is still in `/dev/shm`.
pub fn assert_unlinked(name: &str) {
    assert!(
        !std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "{name} left in /dev/shm"
    );
}

/// The names in `/dev/shm` that start with `prefix`, sorted (a test's segments, a
/// dict's tables, a pool's rings).
pub fn shm_names_starting(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
        .expect("/dev/shm")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Panics if any name in `/dev/shm` starts with `prefix`, naming them.
pub fn assert_none_starting(prefix: &str) {
    let left = shm_names_starting(prefix);
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_per_call_and_carry_the_tag_and_pid() {
        let a = unique("t");
        let b = unique("t");
        assert_ne!(a, b);
        let pid = std::process::id().to_string();
        for n in [&a, &b] {
            assert!(n.starts_with("shmkit-test-t-"), "{n}");
            assert!(n.contains(&pid), "{n}");
        }
    }

    #[test]
    fn names_starting_a_prefix_are_listed_and_asserted_away() {
        let name = unique("listed");
        let path = format!("/dev/shm/{name}");
        std::fs::write(&path, b"x").unwrap();
        let listed = shm_names_starting(&name);
        let asserted = std::panic::catch_unwind(|| assert_none_starting(&name));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(listed, vec![name.clone()]);
        assert!(asserted.is_err(), "a name left behind must fail the check");
        assert_none_starting(&name);
        assert_unlinked(&name);
    }
}
