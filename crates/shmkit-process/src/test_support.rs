//! `test_support!()`: children of `cargo test` binaries.

/// Test support; use [`test_support!()`](crate::test_support) rather than this.
#[doc(hidden)]
pub mod __private {
    pub use ctor;

    /// Record where the generated child-entry test of this test binary is (called by a
    /// `ctor` before main: it stores a `&'static str`, nothing more — no allocation, no
    /// user code).
    pub fn register_test_entry(module_path: &'static str) {
        let _ = crate::state::TEST_ENTRY.set(module_path);
    }

    /// The body of the generated test: run the child role if this process is a child.
    pub fn test_child_entry() {
        crate::child::run_child_role_if_requested();
    }
}

/// Lets a `cargo test` binary start children with [`StartMethod::Spawn`](crate::StartMethod::Spawn): put it once at
/// the top level of each integration-test file (or test module) that spawns.
///
/// It expands to a test named `__shmkit_child_entry` that does nothing in a normal run;
/// a child is this test binary re-executed to run only that test, which then runs the
/// requested function. A constructor records the test's name before main (it stores a
/// string, nothing more).
///
/// For libtest binaries (the default `harness = true`). A test target with
/// `harness = false` has a `main` of its own: call [`init`](crate::init) there instead.
/// Calling `init()` inside a test is harmless; children still run the generated test.
///
/// ```ignore
/// shmkit_process::test_support!();
///
/// #[test]
/// fn doubles_in_a_child() {
///     fn double(x: i32) -> i32 { x * 2 }
///     assert_eq!(shmkit_process::spawn(double, 21).unwrap().join().unwrap(), 42);
/// }
/// ```
#[macro_export]
macro_rules! test_support {
    () => {
        #[$crate::__private::ctor::ctor(unsafe, crate_path = $crate::__private::ctor)]
        fn __shmkit_register_test_entry() {
            $crate::__private::register_test_entry(::std::module_path!());
        }

        #[test]
        fn __shmkit_child_entry() {
            $crate::__private::test_child_entry();
        }
    };
}

/// The libtest name of the generated child-entry test: its module path without the
/// crate name (`tests/foo.rs` at top level: `__shmkit_child_entry`; in `mod m`:
/// `m::__shmkit_child_entry`).
pub(crate) fn test_entry_name(module_path: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::__shmkit_child_entry"),
        None => "__shmkit_child_entry".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_entry_names() {
        assert_eq!(test_entry_name("process"), "__shmkit_child_entry");
        assert_eq!(
            test_entry_name("process::a::b"),
            "a::b::__shmkit_child_entry"
        );
    }
}
