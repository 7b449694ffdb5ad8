//! Nothing left behind, whatever ends the parent (issue 15): a program using a `Pool` is
//! stopped mid-`map` with SIGINT (Ctrl-C's signal) 50 times and with SIGKILL 50 times.
//! After each stop: no entry of that program's pools in `/dev/shm` and no worker process
//! still running. The program runs in a child process of this test (a real process,
//! re-executed like any `Spawn` child); its own workers are its children. Every wait is
//! bounded.
//!
//! In a file of its own: the test kills processes and counts `/dev/shm` entries, which
//! nothing else in this binary should be doing at the same time.

#![cfg(not(miri))] // real processes and syscalls

use shmkit_pool::Pool;
use shmkit_process::{ExitStatus, Process, StartMethod};
use shmkit_segment::{Segment, SegmentHandle};
use std::time::{Duration, Instant};

shmkit_process::test_support!();

/// The bound on every wait: a bug fails the test after this, it never hangs it.
const BOUND: Duration = Duration::from_secs(20);

/// Words of the progress segment the parent program writes: results received so far,
/// then the pids of its workers.
const PROGRESS: usize = 0;
const WORKERS: usize = 2;
const fn worker_word(i: usize) -> usize {
    8 * (1 + i)
}

/// A task of the map: every eighth input and output is 270 kB (above the 256 KiB that
/// travel inline), so blob segments (the inputs made at submit, the results made by the
/// workers) are in flight at the kill. Strings: serde writes a `Vec<u8>` one byte at a
/// time, which in a debug build is what this test would spend its time on.
fn echo(v: String) -> String {
    std::thread::sleep(Duration::from_micros(300)); // the work of the task
    v
}

/// The parent program: a pool, then maps until it is stopped.
fn pool_program((progress, fork): (SegmentHandle, bool)) {
    // Ctrl-C's default effect, as in a program started from a terminal (a shell starts
    // background jobs, and so maybe this test, with SIGINT ignored).
    // SAFETY: signal(2) with a valid signal number and SIG_DFL; no handler is installed.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let progress = progress.open().expect("the progress segment opens");
    let method = if fork {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let pool = Pool::builder()
        .processes(WORKERS)
        .start_method(method)
        .build()
        .expect("pool starts");
    for (i, pid) in pool.worker_pids().into_iter().enumerate() {
        progress
            .atomic_u64(worker_word(i))
            .unwrap()
            .store(u64::from(pid), std::sync::atomic::Ordering::Release);
    }
    let done = progress.atomic_u64(PROGRESS).unwrap();
    let items: Vec<String> = (0..64u32)
        .map(|i| "x".repeat(if i % 8 == 0 { 270_000 } else { 8 }))
        .collect();
    loop {
        let results = pool.imap(echo, items.iter().cloned()).expect("map starts");
        for r in results {
            r.expect("task runs");
            done.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
    }
}

/// Whether `pid` is a process that still runs (a zombie does not: it is only waiting for
/// whoever inherited it to reap it).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Entries in `/dev/shm` of the pools of process `pid`.
fn pool_segments_of(pid: u32) -> Vec<String> {
    shmkit_testing::shm_names_starting(&format!("shmkit-pool-{pid}-"))
}

/// Removes what a failed run left in `/dev/shm` (so a failure does not litter), after
/// the assertions looked at it.
struct Sweep(Vec<u32>);

impl Drop for Sweep {
    fn drop(&mut self) {
        for &pid in &self.0 {
            for name in pool_segments_of(pid) {
                let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
            }
        }
    }
}

/// One run: start the program, wait until `after` results came back, stop it with
/// `signal`; then what did it leave?
fn stop_mid_map(
    signal: i32,
    after: u64,
    (program_method, workers_fork): (StartMethod, bool),
    sweep: &mut Sweep,
) -> (u32, Vec<u32>) {
    let progress = Segment::anonymous(8 * (1 + WORKERS)).expect("progress segment");
    let mut program: Process<()> = Process::builder()
        .name("pool-program")
        .start_method(program_method)
        .spawn(pool_program, (progress.handle(), workers_fork))
        .expect("the program starts");
    let pid = program.pid();
    sweep.0.push(pid);
    let done = progress.atomic_u64(PROGRESS).unwrap();
    let t0 = Instant::now();
    while done.load(std::sync::atomic::Ordering::Acquire) < after {
        assert!(
            program.is_alive(),
            "the program ended early: {:?}",
            program.exit_status()
        );
        assert!(t0.elapsed() < BOUND, "the map never got going");
        std::thread::sleep(Duration::from_micros(200));
    }
    let workers: Vec<u32> = (0..WORKERS)
        .map(|i| {
            progress
                .atomic_u64(worker_word(i))
                .unwrap()
                .load(std::sync::atomic::Ordering::Acquire) as u32
        })
        .collect();
    assert!(workers.iter().all(|&w| w != 0), "worker pids written");
    // SAFETY: kill(2) with a valid signal on our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
    let ended = program.join_timeout(BOUND);
    assert!(ended.is_err(), "a stopped program returns nothing");
    assert_eq!(program.exit_status(), Some(ExitStatus::Signaled(signal)));
    // Its workers go when it goes (they are its children: we cannot reap them, only
    // see them stop).
    let t0 = Instant::now();
    while workers.iter().any(|&w| running(w)) {
        assert!(
            t0.elapsed() < BOUND,
            "workers {workers:?} of {pid} still run"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    (pid, workers)
}

#[test]
fn sigint_or_sigkill_mid_map_leaves_nothing() {
    let mut sweep = Sweep(Vec::new());
    let t0 = Instant::now();
    let mut left = Vec::new();
    let mut runs = 0;
    for signal in [libc::SIGINT, libc::SIGKILL] {
        for run in 0..50u64 {
            // Stopped after 1 to 24 results: before, between and after the first blobs.
            let after = 1 + (run * 7) % 24;
            // The program re-executed (as a user's program starts) or forked (quicker),
            // its workers started either way.
            let program = if run % 2 == 0 {
                StartMethod::Spawn
            } else {
                StartMethod::Fork
            };
            let how = (program, run % 4 >= 2);
            let (pid, workers) = stop_mid_map(signal, after, how, &mut sweep);
            runs += 1;
            for w in &workers {
                assert!(!running(*w), "worker {w} of {pid} still runs");
            }
            left.extend(pool_segments_of(pid));
        }
    }
    assert!(
        left.is_empty(),
        "{runs} programs stopped mid-map left {} entries in /dev/shm, the first: {:?}",
        left.len(),
        &left[..left.len().min(10)]
    );
    eprintln!(
        "{runs} programs stopped mid-map, nothing left, in {:?}",
        t0.elapsed()
    );
}
