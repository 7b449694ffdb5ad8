//! What can go wrong around the function, and how it is reported: values that refuse to
//! encode (on either side), panics in threads other than the function's.
#![cfg(not(miri))] // real processes: nothing here can run under Miri

use std::time::Duration;

use serde::ser::Error as _;
use shmkit_process::{Process, ProcessError, StartMethod};

shmkit_process::test_support!();

/// Serializes only when `ok` is true.
#[derive(Debug, serde::Deserialize)]
struct Refuses {
    ok: bool,
}

impl serde::Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.ok {
            s.serialize_bool(true)
        } else {
            Err(S::Error::custom("this value refuses to be encoded"))
        }
    }
}

fn takes_refuses(r: Refuses) -> bool {
    r.ok
}

fn makes_refuses(ok: bool) -> Refuses {
    Refuses { ok }
}

#[test]
fn an_unencodable_argument_starts_nothing() {
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let err = Process::builder()
            .start_method(method)
            .spawn(takes_refuses, Refuses { ok: false })
            .unwrap_err();
        match &err {
            ProcessError::Encode { type_name, reason } => {
                assert!(type_name.ends_with("Refuses"), "{err}");
                // postcard keeps no custom message, only that serde refused.
                assert!(reason.contains("Serialization"), "{err}");
            }
            other => panic!("{method:?}: expected Encode, got {other:?}"),
        }
    }
}

#[test]
fn an_unencodable_result_is_an_encode_error() {
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let mut p = Process::builder()
            .start_method(method)
            .spawn(makes_refuses, false)
            .unwrap();
        match p.join_timeout(Duration::from_secs(10)) {
            Err(ProcessError::Encode { type_name, reason }) => {
                assert!(type_name.ends_with("Refuses"), "{type_name}");
                assert!(reason.contains("Serialization"), "{reason}");
            }
            other => panic!("{method:?}: expected Encode, got {other:?}"),
        }
    }
}

/// A helper thread panics; the function itself returns normally.
fn side_thread_panics(x: u32) -> u32 {
    let t = std::thread::spawn(|| panic!("helper thread failed"));
    assert!(t.join().is_err());
    x + 1
}

/// The function panics with a formatted message.
fn panics_with(n: u32) -> u32 {
    panic!("bad input {n}");
}

#[test]
fn only_the_function_s_own_panic_fails_the_process() {
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let mut p = Process::builder()
            .start_method(method)
            .spawn(side_thread_panics, 41)
            .unwrap();
        assert_eq!(p.join_timeout(Duration::from_secs(10)).unwrap(), 42);
        let mut p = Process::builder()
            .name("panicker")
            .start_method(method)
            .spawn(panics_with, 7)
            .unwrap();
        let pid = p.pid();
        match p.join_timeout(Duration::from_secs(10)) {
            Err(ProcessError::Panicked {
                name,
                pid: reported,
                message,
            }) => {
                assert_eq!((name.as_str(), reported), ("panicker", pid));
                assert!(message.contains("bad input 7"), "{message}");
            }
            other => panic!("{method:?}: expected Panicked, got {other:?}"),
        }
        assert_eq!(p.exit_status().and_then(|s| s.code()), Some(1));
    }
}

fn panics_at_length(n: usize) -> u32 {
    panic!("{}", "é".repeat(n))
}

#[test]
fn a_huge_panic_message_comes_back_cut() {
    let mut p = shmkit_process::spawn(panics_at_length, 1 << 20).unwrap();
    match p.join_timeout(Duration::from_secs(10)) {
        Err(ProcessError::Panicked { message, .. }) => {
            assert!(message.starts_with("éé"), "{}", &message[..20]);
            assert!(message.len() < 20 * 1024, "{} bytes", message.len());
            assert!(message.contains("(cut)"));
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
}
