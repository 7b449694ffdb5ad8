//! Hundreds of children, joined or dropped, leave no descriptor, no child and no
//! zombie behind. Alone in its test binary, so no other test's children or descriptors
//! blur the count.
#![cfg(not(miri))] // real processes: nothing here can run under Miri

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use shmkit_process::{Process, StartMethod};

shmkit_process::test_support!();

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn open_fds() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Open pidfds: the reaper closes its copy just after reaping a dropped child.
fn open_pidfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
        .filter(|target| target.to_string_lossy().contains("pidfd"))
        .count()
}

/// Children of every thread of this process (`/proc/<pid>/task/<tid>/children`),
/// zombies included: a child stays listed until it is reaped.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut all = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{me}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        if let Ok(list) = std::fs::read_to_string(path) {
            all.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    all
}

/// Poll (bounded) until `check` holds.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if check() {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn spawns_in_a_row_leave_nothing_behind() {
    // Warm-up: the launcher and reaper threads (and the reaper's eventfd) start once.
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let p = Process::builder()
            .start_method(method)
            .spawn(sleep_ms, 1)
            .unwrap();
        drop(p);
    }
    assert!(eventually(Duration::from_secs(10), || {
        children().is_empty() && open_pidfds() == 0
    }));
    let fds = open_fds();

    for i in 0..100u64 {
        let method = if i % 2 == 0 {
            StartMethod::Spawn
        } else {
            StartMethod::Fork
        };
        let p = Process::builder()
            .start_method(method)
            .spawn(square, i)
            .unwrap();
        assert_eq!(p.join().unwrap(), i * i);
    }
    assert_eq!(children(), Vec::<u32>::new(), "joined children left behind");
    assert_eq!(open_fds(), fds, "descriptors leaked by joined children");

    // Dropped without join: the reaper reaps each as it exits and closes its pidfd.
    for i in 0..20u64 {
        let method = if i % 2 == 0 {
            StartMethod::Spawn
        } else {
            StartMethod::Fork
        };
        drop(
            Process::builder()
                .start_method(method)
                .spawn(sleep_ms, 10)
                .unwrap(),
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || children().is_empty()),
        "dropped children not reaped: {:?}",
        children()
    );
    assert!(
        eventually(Duration::from_secs(5), || open_fds() == fds),
        "descriptors leaked by dropped children: {:?} -> {:?}",
        fds,
        open_fds()
    );
}
