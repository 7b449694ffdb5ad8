//! The launcher across real child processes: results, panics, signals, timeouts,
//! both start methods, reaping, parent death, large arguments.
#![cfg(not(miri))] // real processes: nothing here can run under Miri

use std::time::{Duration, Instant};

use shmkit_process::{ExitStatus, Process, ProcessError, StartMethod, spawn};

shmkit_process::test_support!();

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn boom(msg: String) -> u32 {
    panic!("{msg}")
}

fn exit_early(code: i32) -> u32 {
    std::process::exit(code)
}

fn my_name(_: ()) -> String {
    shmkit_process::current_process().name
}

fn sum_bytes(v: Vec<u8>) -> (usize, u64) {
    (v.len(), v.iter().map(|&b| u64::from(b)).sum())
}

fn echo_big(n: usize) -> Vec<u8> {
    vec![7u8; n]
}

fn env_value(key: String) -> Option<String> {
    std::env::var(key).ok()
}

/// Start a grandchild that sleeps, report its pid, then sleep.
fn spawn_grandchild(_: ()) -> u32 {
    let grandchild = spawn(sleep_ms, 30_000).unwrap();
    let pid = grandchild.pid();
    std::mem::forget(grandchild); // keep it running; this process will be killed
    // Tell the test through a file, since we will be killed before returning.
    std::fs::write(
        format!("/tmp/shmkit-test-grandchild-{}", std::process::id()),
        pid.to_string(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(30));
    pid
}

fn both_methods() -> [StartMethod; 2] {
    [StartMethod::Spawn, StartMethod::Fork]
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Wait (bounded) until `pid` is gone from /proc entirely (neither running nor zombie).
fn gone_within(pid: u32, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if proc_state(pid).is_none() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn results_come_back_with_both_methods() {
    for method in both_methods() {
        let children: Vec<_> = (0..3)
            .map(|i| {
                Process::builder()
                    .start_method(method)
                    .spawn(square, i)
                    .unwrap()
            })
            .collect();
        let results: Vec<u64> = children.into_iter().map(|p| p.join().unwrap()).collect();
        assert_eq!(results, [0, 1, 4], "{method:?}");
    }
}

#[test]
fn closures_and_names_work() {
    let p = Process::builder()
        .name("worker-7")
        .spawn(my_name, ())
        .unwrap();
    assert_eq!(p.name(), "worker-7");
    assert_eq!(p.join().unwrap(), "worker-7");
    let add_one: fn(i32) -> i32 = |x| x + 1;
    assert_eq!(spawn(add_one, 41).unwrap().join().unwrap(), 42);
}

#[test]
fn a_panic_comes_back_with_its_message() {
    for method in both_methods() {
        let p = Process::builder()
            .start_method(method)
            .spawn(boom, "worker exploded".to_string())
            .unwrap();
        match p.join() {
            Err(ProcessError::Panicked { message, .. }) => {
                assert!(message.contains("worker exploded"), "{message}")
            }
            other => panic!("{method:?}: expected Panicked, got {other:?}"),
        }
    }
}

#[test]
fn sigkill_and_sigterm_are_named() {
    for (method, sig) in [
        (StartMethod::Spawn, "SIGKILL"),
        (StartMethod::Fork, "SIGTERM"),
    ] {
        let p = Process::builder()
            .start_method(method)
            .spawn(sleep_ms, 30_000)
            .unwrap();
        if sig == "SIGKILL" {
            p.kill().unwrap();
        } else {
            p.terminate().unwrap();
        }
        let mut p = p;
        match p.join_timeout(Duration::from_secs(10)) {
            Err(ProcessError::Signaled { signal, .. }) => assert_eq!(signal, sig),
            other => panic!("expected Signaled({sig}), got {other:?}"),
        }
        assert!(!p.is_alive());
    }
}

#[test]
fn exiting_without_a_result_is_an_error_with_the_code() {
    let mut p = spawn(exit_early, 3).unwrap();
    match p.join_timeout(Duration::from_secs(10)) {
        Err(ProcessError::ExitedWithoutResult { code: 3, .. }) => {}
        other => panic!("expected ExitedWithoutResult(3), got {other:?}"),
    }
    assert_eq!(p.exit_status(), Some(ExitStatus::Exited(3)));
}

#[test]
fn join_timeout_returns_and_the_process_stays_joinable() {
    let mut p = spawn(sleep_ms, 300).unwrap();
    let t0 = Instant::now();
    assert!(matches!(
        p.join_timeout(Duration::from_millis(50)),
        Err(ProcessError::Timeout { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(p.is_alive());
    assert_eq!(p.join_timeout(Duration::from_secs(10)).unwrap(), 300);
    assert!(matches!(
        p.join_timeout(Duration::from_secs(1)),
        Err(ProcessError::AlreadyJoined { .. })
    ));
}

#[test]
fn drop_without_join_leaves_no_zombie() {
    for method in both_methods() {
        let p = Process::builder()
            .start_method(method)
            .spawn(sleep_ms, 50)
            .unwrap();
        let pid = p.pid();
        drop(p);
        assert!(
            gone_within(pid, Duration::from_secs(10)),
            "{method:?}: pid {pid} still in /proc (state {:?})",
            proc_state(pid)
        );
    }
}

#[test]
fn a_child_dies_with_its_parent() {
    let mut middle = spawn(spawn_grandchild, ()).unwrap();
    let marker = format!("/tmp/shmkit-test-grandchild-{}", middle.pid());
    let t0 = Instant::now();
    let grandchild: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            break pid;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "grandchild never reported"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = std::fs::remove_file(&marker);
    assert!(proc_state(grandchild).is_some(), "grandchild running");
    middle.kill().unwrap();
    assert!(matches!(
        middle.join_timeout(Duration::from_secs(10)),
        Err(ProcessError::Signaled { .. })
    ));
    // The grandchild got SIGKILL when its parent died; its new parent (init or a
    // subreaper) reaps it.
    assert!(
        gone_within(grandchild, Duration::from_secs(10)),
        "grandchild outlived its parent"
    );
}

#[test]
fn a_64_mib_argument_and_a_16_mib_result_travel() {
    let arg: Vec<u8> = (0..64 << 20).map(|i| (i % 251) as u8).collect();
    let expected: u64 = arg.iter().map(|&b| u64::from(b)).sum();
    for method in both_methods() {
        let p = Process::builder()
            .start_method(method)
            .spawn(sum_bytes, arg.clone())
            .unwrap();
        assert_eq!(p.join().unwrap(), (64 << 20, expected), "{method:?}");
    }
    let big = spawn(echo_big, 16 << 20).unwrap().join().unwrap();
    assert_eq!(big.len(), 16 << 20);
    assert!(big.iter().all(|&b| b == 7));
}

#[test]
fn environment_reaches_the_child() {
    for method in both_methods() {
        let p = Process::builder()
            .start_method(method)
            .env("SHMKIT_TEST_VAR", "hello")
            .spawn(env_value, "SHMKIT_TEST_VAR".to_string())
            .unwrap();
        assert_eq!(p.join().unwrap().as_deref(), Some("hello"));
    }
}

/// Serializes any byte but refuses to deserialize values above 100.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
#[serde(try_from = "u8")]
struct Picky(u8);

impl TryFrom<u8> for Picky {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        if v <= 100 {
            Ok(Picky(v))
        } else {
            Err(format!("{v} is above 100"))
        }
    }
}

fn takes_picky(p: Picky) -> u8 {
    p.0
}

fn makes_picky(v: u8) -> Picky {
    Picky(v)
}

#[test]
fn undecodable_arguments_and_results_are_errors_not_hangs() {
    assert_eq!(spawn(takes_picky, Picky(7)).unwrap().join().unwrap(), 7);
    let err = spawn(takes_picky, Picky(200)).unwrap().join().unwrap_err();
    assert!(matches!(err, ProcessError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("argument process::Picky"), "{err}");
    let err = spawn(makes_picky, 200).unwrap().join().unwrap_err();
    assert!(matches!(err, ProcessError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("Picky"), "{err}");
}

#[test]
fn a_hundred_spawns_leave_nothing_behind() {
    let fds_before = std::fs::read_dir("/proc/self/fd").unwrap().count();
    for i in 0..100u64 {
        assert_eq!(spawn(square, i).unwrap().join().unwrap(), i * i);
    }
    let fds_after = std::fs::read_dir("/proc/self/fd").unwrap().count();
    // Other tests run concurrently and hold descriptors briefly; a leak would be 100+.
    assert!(
        fds_after < fds_before + 20,
        "fds {fds_before} -> {fds_after}"
    );
    let me = std::process::id();
    let children: Vec<String> = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(children.len() < 20, "children left: {children:?}");
}

#[test]
fn cpu_count_is_positive() {
    assert!(shmkit_process::cpu_count() >= 1);
}
