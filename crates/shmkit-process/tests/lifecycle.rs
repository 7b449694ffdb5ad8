//! Lifecycles around the parent: children that outlive it on request, children that
//! spawn children (with both start methods), grandchildren that hold the control socket,
//! names. Every wait is bounded.
#![cfg(not(miri))] // real processes: nothing here can run under Miri

use std::time::{Duration, Instant};

use shmkit_process::{ExitStatus, Process, ProcessError, StartMethod};

shmkit_process::test_support!();

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn square(x: u64) -> u64 {
    x * x
}

fn my_name(_: ()) -> String {
    shmkit_process::current_process().name
}

fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Gone, or a zombie waiting for whichever process adopted it: either way, not running.
fn not_running_within(pid: u32, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if matches!(proc_state(pid), None | Some('Z') | Some('X')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A file for a child to report a pid through (it may be killed before it can return).
struct Marker(String);

impl Marker {
    fn new(tag: &str) -> Marker {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Marker(format!(
            "/tmp/shmkit-process-test-{tag}-{}-{n}",
            std::process::id()
        ))
    }

    fn wait_pid(&self, limit: Duration) -> u32 {
        let t0 = Instant::now();
        loop {
            if let Some(pid) = std::fs::read_to_string(&self.0)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return pid;
            }
            assert!(t0.elapsed() < limit, "no pid reported in {}", self.0);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Kills a stray pid on drop (a test that fails must not leave a sleeper behind).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Start a grandchild that sleeps (tied to this process or not), write its pid to
/// `marker`, then sleep until killed.
fn middle(args: (String, bool, StartMethod)) -> u32 {
    let (marker, daemon, method) = args;
    let grandchild = Process::builder()
        .start_method(method)
        .daemon(daemon)
        .spawn(sleep_ms, 20_000)
        .unwrap();
    let pid = grandchild.pid();
    std::fs::write(&marker, pid.to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(20));
    pid
}

#[test]
fn a_grandchild_dies_with_its_parent_with_both_methods() {
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let marker = Marker::new("tied");
        let mut m = Process::builder()
            .spawn(middle, (marker.0.clone(), true, method))
            .unwrap();
        let grandchild = marker.wait_pid(Duration::from_secs(10));
        let _cleanup = KillOnDrop(grandchild);
        assert!(proc_state(grandchild).is_some());
        m.kill().unwrap();
        assert!(matches!(
            m.join_timeout(Duration::from_secs(10)),
            Err(ProcessError::Signaled { .. })
        ));
        assert!(
            not_running_within(grandchild, Duration::from_secs(10)),
            "{method:?}: grandchild {grandchild} outlived its parent"
        );
    }
}

#[test]
fn daemon_false_outlives_the_parent() {
    let marker = Marker::new("free");
    let mut m = Process::builder()
        .spawn(middle, (marker.0.clone(), false, StartMethod::Spawn))
        .unwrap();
    let grandchild = marker.wait_pid(Duration::from_secs(10));
    let _cleanup = KillOnDrop(grandchild);
    m.kill().unwrap();
    assert!(m.join_timeout(Duration::from_secs(10)).is_err());
    // PR_SET_PDEATHSIG would have been sent as the parent exited, i.e. before the join
    // above returned; give a delivered SIGKILL 200 ms to show, and see it did not come.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(200) {
        assert!(
            matches!(proc_state(grandchild), Some('S' | 'R' | 'D')),
            "grandchild {grandchild} died with its parent despite daemon(false)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fork a grandchild that keeps this child's control socket open, then exit without a
/// result.
fn leave_a_socket_holder(marker: String) -> u32 {
    let g = Process::builder()
        .start_method(StartMethod::Fork)
        .daemon(false)
        .spawn(sleep_ms, 20_000)
        .unwrap();
    std::fs::write(&marker, g.pid().to_string()).unwrap();
    std::mem::forget(g);
    std::process::exit(3)
}

#[test]
fn join_returns_although_a_grandchild_holds_the_socket() {
    let marker = Marker::new("holder");
    let mut p = shmkit_process::spawn(leave_a_socket_holder, marker.0.clone()).unwrap();
    let grandchild = marker.wait_pid(Duration::from_secs(10));
    let _cleanup = KillOnDrop(grandchild);
    let t0 = Instant::now();
    match p.join_timeout(Duration::from_secs(10)) {
        Err(ProcessError::ExitedWithoutResult { code: 3, .. }) => {}
        other => panic!("expected ExitedWithoutResult(3), got {other:?}"),
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "join waited for the grandchild"
    );
    assert!(
        proc_state(grandchild).is_some(),
        "the holder was still running"
    );
}

/// Spawn children from inside a child, with each start method.
fn nested(method: StartMethod) -> Vec<u64> {
    (1..=3)
        .map(|i| {
            Process::builder()
                .start_method(method)
                .spawn(square, i)
                .unwrap()
                .join()
                .unwrap()
        })
        .collect()
}

#[test]
fn children_spawn_children_with_every_combination() {
    for outer in [StartMethod::Spawn, StartMethod::Fork] {
        for inner in [StartMethod::Spawn, StartMethod::Fork] {
            let mut p = Process::builder()
                .start_method(outer)
                .spawn(nested, inner)
                .unwrap();
            assert_eq!(
                p.join_timeout(Duration::from_secs(30)).unwrap(),
                [1, 4, 9],
                "{outer:?} -> {inner:?}"
            );
        }
    }
}

fn names_down_two_levels(method: StartMethod) -> (String, String) {
    let inner = Process::builder()
        .name("grandchild")
        .start_method(method)
        .spawn(my_name, ())
        .unwrap()
        .join()
        .unwrap();
    (shmkit_process::current_process().name, inner)
}

#[test]
fn current_process_names_each_level() {
    assert_eq!(shmkit_process::current_process().name, "MainProcess");
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let (child, grandchild) = Process::builder()
            .name("child")
            .start_method(method)
            .spawn(names_down_two_levels, method)
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(
            (child.as_str(), grandchild.as_str()),
            ("child", "grandchild")
        );
    }
}

#[test]
fn exit_status_and_liveness_follow_the_child() {
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(sleep_ms, 20_000)
        .unwrap();
    assert!(p.is_alive());
    assert_eq!(p.exit_status(), None);
    p.kill().unwrap();
    let t0 = Instant::now();
    while p.is_alive() {
        assert!(t0.elapsed() < Duration::from_secs(10), "SIGKILL not seen");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(p.exit_status(), Some(ExitStatus::Signaled(9)));
    // Signals after the reap are no-ops, not a signal to a reused pid.
    p.kill().unwrap();
    p.terminate().unwrap();
    assert!(matches!(
        p.join(),
        Err(ProcessError::Signaled { number: 9, .. })
    ));
}

#[test]
fn a_very_long_name_and_an_argument_at_the_inline_limit_travel() {
    // The request carries the name next to the argument; neither has a size limit of
    // its own (messages are sized with MSG_PEEK before they are read).
    let name = "n".repeat(100_000);
    let p = Process::builder()
        .name(name.clone())
        .spawn(my_name, ())
        .unwrap();
    assert_eq!(p.join().unwrap(), name);
    for len in [64 * 1024 - 8, 64 * 1024, 64 * 1024 + 8] {
        let p = shmkit_process::spawn(byte_count, vec![1u8; len]).unwrap();
        assert_eq!(p.join().unwrap(), len);
    }
}

fn byte_count(v: Vec<u8>) -> usize {
    v.len()
}

fn where_stdout_goes(_: ()) -> String {
    std::fs::read_link("/proc/self/fd/1")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn a_child_of_a_test_binary_writes_to_the_parent_s_stdout() {
    // libtest's own lines in the child go to /dev/null; the function's output does not.
    let ours = where_stdout_goes(());
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let theirs = Process::builder()
            .start_method(method)
            .spawn(where_stdout_goes, ())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(theirs, ours, "{method:?}");
    }
}

#[test]
fn many_threads_spawn_at_once() {
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..4u64 {
                    let method = if (t + i) % 2 == 0 {
                        StartMethod::Spawn
                    } else {
                        StartMethod::Fork
                    };
                    let x = t * 10 + i;
                    let mut p = Process::builder()
                        .start_method(method)
                        .spawn(square, x)
                        .unwrap();
                    assert_eq!(p.join_timeout(Duration::from_secs(30)).unwrap(), x * x);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn liveness_is_shared_between_threads() {
    // `is_alive`, `exit_status` and `kill` take `&self`: one process, watched by several
    // threads, is reaped exactly once and all of them see the same status.
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn(sleep_ms, 20_000)
        .unwrap();
    let statuses: Vec<Option<ExitStatus>> = std::thread::scope(|s| {
        let watchers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let t0 = Instant::now();
                    while p.is_alive() {
                        assert!(t0.elapsed() < Duration::from_secs(10), "never died");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    p.exit_status()
                })
            })
            .collect();
        p.terminate().unwrap();
        watchers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![Some(ExitStatus::Signaled(15)); 4]);
    assert!(matches!(
        p.join(),
        Err(ProcessError::Signaled { number: 15, .. })
    ));
}

#[test]
fn init_called_in_a_test_changes_nothing() {
    // Out of habit, a test may call `init()`; children must still run only the
    // generated entry test, not the whole suite.
    shmkit_process::init();
    let p = shmkit_process::spawn(square, 9).unwrap();
    assert_eq!(p.join().unwrap(), 81);
}
