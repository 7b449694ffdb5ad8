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
}
