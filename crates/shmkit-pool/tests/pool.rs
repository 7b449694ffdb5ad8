//! The pool across real worker processes: every map form, panics, workers killed
//! mid-task, terminate, drop, timeouts, maxtasksperchild, both start methods, large
//! values, many tasks. Every wait is bounded; every pool's segments are gone at the end.

use shmkit_pool::{Error, Pool};
use shmkit_process::StartMethod;
use shmkit_testing::assert_none_starting;
use std::time::{Duration, Instant};

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(60);

fn square(x: u64) -> u64 {
    x * x
}

fn whoami(_: u32) -> u32 {
    std::process::id()
}

fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn picky(x: u32) -> u32 {
    assert!(x != 3, "three is not welcome");
    x
}

/// Kills its own process with SIGKILL when given 3: a worker dying mid-task.
fn die_on_three(x: u32) -> u32 {
    if x == 3 {
        // SAFETY: kill(2) on our own pid with a valid signal number.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x
}

fn pool(n: usize) -> Pool {
    Pool::with_processes(n).expect("pool starts")
}

/// Whether `pid` is a process that still exists (running or zombie).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn every_map_form_keeps_order() {
    let p = pool(2);
    let prefix = p.prefix().to_owned();
    assert_eq!(p.map(square, 0..5).unwrap(), [0, 1, 4, 9, 16]);
    assert_eq!(
        p.map_chunked(square, 0..100, 7).unwrap(),
        (0..100u64).map(|x| x * x).collect::<Vec<_>>()
    );
    let it = p.imap(square, 0..50).unwrap();
    assert_eq!(it.len(), 50);
    let got: Vec<u64> = it.map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..50u64).map(|x| x * x).collect::<Vec<_>>());
    let got: Vec<u64> = p
        .imap_chunked(square, 0..50, 4)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, (0..50u64).map(|x| x * x).collect::<Vec<_>>());
    let mut got: Vec<u64> = p
        .imap_unordered(square, 0..50)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..50u64).map(|x| x * x).collect::<Vec<_>>());
    fn add(a: u32, b: u32) -> u32 {
        a + b
    }
    assert_eq!(p.starmap(add, [(1, 2), (3, 4)]).unwrap(), [3, 7]);
    assert_eq!(
        p.map(
            |(a, b): (u32, String)| format!("{b}{a}"),
            [(1, "x".to_string())]
        )
        .unwrap(),
        ["x1"]
    );
    assert_eq!(p.apply(square, 9).unwrap(), 81);
    assert!(p.map(square, Vec::new()).unwrap().is_empty());
    let r = p.map_async(square, 0..10).unwrap();
    assert_eq!(r.len(), 10);
    assert!(r.wait_timeout(LONG));
    assert_eq!(r.completed(), 10);
    assert!(r.get_each().into_iter().all(|x| x.is_ok()));
    drop(p);
    assert_none_starting(&format!("{prefix}-"));
}

/// An iterator that says it holds `claims` items, exactly, whatever it holds.
struct Claims<I> {
    inner: I,
    claims: usize,
}

impl<I: Iterator> Iterator for Claims<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claims, Some(self.claims))
    }
}

/// The inputs are encoded as they come, and the default chunk size is taken from the
/// iterator's exact size hint when it gives one: a hint that lies changes the chunks,
/// never the results; an iterator with no exact hint is counted first.
#[test]
fn items_are_mapped_whatever_their_iterator_says_of_its_length() {
    let p = pool(2);
    let prefix = p.prefix().to_owned();
    let squares = |n: u64| (0..n).map(|x| x * x).collect::<Vec<_>>();
    for (holds, claims) in [(100, 3), (10, 1000), (1000, 0), (0, 5)] {
        let items = Claims {
            inner: 0..holds,
            claims,
        };
        assert_eq!(
            p.map(square, items).unwrap(),
            squares(holds),
            "{holds} items claiming {claims}"
        );
    }
    let evens = (0..2000u64).filter(|x| x % 2 == 0);
    assert_eq!(
        p.map(square, evens).unwrap(),
        (0..1000u64).map(|x| 4 * x * x).collect::<Vec<_>>()
    );
    let names = p
        .map(|i: u32| i.to_string(), (0..300).filter(|i| i % 3 == 0))
        .unwrap();
    assert_eq!(
        names,
        (0..100).map(|i| (3 * i).to_string()).collect::<Vec<_>>()
    );
    drop(p);
    assert_none_starting(&format!("{prefix}-"));
}

/// Fixed-width numbers travel raw between the pool and its workers, other types as
/// postcard: every raw type at its extremes, and raw arguments with postcard results
/// and the reverse, come back exactly.
#[test]
fn numbers_of_every_width_and_mixed_types_come_back_exactly() {
    fn neg_i8(x: i8) -> i8 {
        x.wrapping_neg()
    }
    fn flip_u16(x: u16) -> u16 {
        !x
    }
    fn flip_i32(x: i32) -> i32 {
        !x
    }
    fn half(x: f32) -> f32 {
        x / 2.0
    }
    fn neg_f64(x: f64) -> f64 {
        -x
    }
    fn flip_u128(x: u128) -> u128 {
        !x
    }
    fn neg_i128(x: i128) -> i128 {
        x.wrapping_neg()
    }
    fn flip_isize(x: isize) -> isize {
        !x
    }
    fn len_of(s: String) -> usize {
        s.len()
    }
    fn spell(x: u64) -> Option<String> {
        (!x.is_multiple_of(3)).then(|| x.to_string())
    }
    fn as_u8(x: i64) -> u8 {
        x as u8
    }
    let p = pool(2);
    let prefix = p.prefix().to_owned();
    let i8s = [i8::MIN, -1, 0, 1, i8::MAX];
    assert_eq!(
        p.map(neg_i8, i8s).unwrap(),
        i8s.map(i8::wrapping_neg).to_vec()
    );
    let u16s = [0, 1, 300, u16::MAX];
    assert_eq!(p.map(flip_u16, u16s).unwrap(), u16s.map(|x| !x).to_vec());
    let i32s = [i32::MIN, -7, 0, i32::MAX];
    assert_eq!(p.map(flip_i32, i32s).unwrap(), i32s.map(|x| !x).to_vec());
    let f32s = [0.0f32, -3.0, f32::MAX, f32::MIN_POSITIVE, f32::INFINITY];
    assert_eq!(p.map(half, f32s).unwrap(), f32s.map(|x| x / 2.0).to_vec());
    let f64s = [0.0f64, 1.5, f64::MIN, f64::NEG_INFINITY];
    assert_eq!(p.map(neg_f64, f64s).unwrap(), f64s.map(|x| -x).to_vec());
    let nan = p.map(neg_f64, [f64::NAN]).unwrap();
    assert_eq!(nan[0].to_bits(), (-f64::NAN).to_bits());
    let u128s = [0, 1 << 100, u128::MAX];
    assert_eq!(p.map(flip_u128, u128s).unwrap(), u128s.map(|x| !x).to_vec());
    let i128s = [i128::MIN, -1, i128::MAX];
    assert_eq!(
        p.map(neg_i128, i128s).unwrap(),
        i128s.map(i128::wrapping_neg).to_vec()
    );
    let isizes = [isize::MIN, 0, isize::MAX];
    assert_eq!(
        p.map(flip_isize, isizes).unwrap(),
        isizes.map(|x| !x).to_vec()
    );
    // Postcard arguments, raw results; raw arguments, postcard results; a chunk size
    // that splits the inputs unevenly.
    let words: Vec<String> = (0..40).map(|n| "w".repeat(n)).collect();
    assert_eq!(
        p.map_chunked(len_of, words.clone(), 7).unwrap(),
        (0..40).collect::<Vec<usize>>()
    );
    assert_eq!(
        p.map_chunked(spell, 0..40u64, 6).unwrap(),
        (0..40u64)
            .map(|x| (!x.is_multiple_of(3)).then(|| x.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        p.map(as_u8, [-1i64, 256, 257, i64::MAX]).unwrap(),
        [255u8, 0, 1, 255]
    );
    drop(p);
    assert_none_starting(&format!("{prefix}-"));
}

#[test]
fn apply_async_ready_successful_and_timeouts() {
    let p = pool(1);
    let slow = p.apply_async(nap, 300).unwrap();
    assert_eq!(slow.successful(), None);
    assert!(matches!(
        slow.get_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    assert!(slow.wait_timeout(LONG));
    assert!(slow.ready());
    assert_eq!(slow.successful(), Some(true));
    assert_eq!(slow.get_timeout(LONG).unwrap(), 300);
    assert!(matches!(slow.get_timeout(LONG), Err(Error::Taken)));

    let bad = p.apply_async(picky, 3).unwrap();
    assert!(bad.wait_timeout(LONG));
    assert_eq!(bad.successful(), Some(false));

    assert!(matches!(p.join(), Err(Error::StillRunning)));
    let pending = p.apply_async(nap, 200).unwrap();
    p.close();
    assert!(matches!(p.apply_async(square, 1), Err(Error::Closed)));
    assert!(matches!(
        p.join_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    p.join_timeout(LONG).expect("joined after the last task");
    assert_eq!(pending.get().unwrap(), 200);
}

#[test]
fn a_panic_is_that_task_error_and_the_worker_keeps_serving() {
    let p = pool(1);
    let before = p.worker_pids();
    match p.map(picky, 0..6) {
        Err(Error::Panicked { message }) => {
            assert!(message.contains("three is not welcome"), "{message}");
            assert!(message.contains("pool.rs"), "with its location: {message}");
        }
        other => panic!("{other:?}"),
    }
    let each: Vec<_> = p.imap(picky, 0..6).unwrap().collect();
    for (i, r) in each.iter().enumerate() {
        match (i, r) {
            (3, Err(Error::Panicked { .. })) => {}
            (i, Ok(v)) => assert_eq!(*v as usize, i),
            (i, other) => panic!("task {i}: {other:?}"),
        }
    }
    assert_eq!(p.worker_pids(), before, "the same worker serves on");
}

#[test]
fn a_worker_killed_mid_task_fails_that_task_only_and_is_replaced() {
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let p = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let prefix = p.prefix().to_owned();
        let before = p.worker_pids();
        let each = p.map_async(die_on_three, 0..8).unwrap();
        assert!(each.wait_timeout(LONG), "map returns instead of hanging");
        for (i, r) in each.get_each().into_iter().enumerate() {
            match (i, r) {
                (3, Err(Error::WorkerDied { pid, cause })) => {
                    assert!(before.contains(&pid), "{pid} was one of {before:?}");
                    assert_eq!(cause, "killed by SIGKILL");
                }
                (i, Ok(v)) => assert_eq!(v as usize, i, "{method:?}"),
                (i, other) => panic!("{method:?} task {i}: {other:?}"),
            }
        }
        // Replaced, and later tasks succeed.
        assert_eq!(p.map(square, 0..20).unwrap().len(), 20);
        let after = p.worker_pids();
        assert_eq!(after.len(), 2);
        assert_ne!(after, before);
        drop(p);
        assert_none_starting(&format!("{prefix}-"));
    }
}

#[test]
fn workers_killed_from_outside_during_a_map_never_hang_it() {
    let p = pool(2);
    let mut it = p.imap(nap, std::iter::repeat_n(2, 200)).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..10 {
        outcomes.push(it.next_timeout(LONG).expect("more to come"));
    }
    let victim = p.worker_pids()[0];
    // SAFETY: kill(2) with a valid signal on a child of this process (not yet reaped).
    assert_eq!(unsafe { libc::kill(victim as i32, libc::SIGKILL) }, 0);
    let t0 = Instant::now();
    while let Some(r) = it.next_timeout(LONG) {
        assert!(!matches!(r, Err(Error::Timeout)), "a result never came");
        outcomes.push(r);
    }
    assert!(t0.elapsed() < LONG);
    assert_eq!(outcomes.len(), 200);
    let died = outcomes
        .iter()
        .filter(|r| matches!(r, Err(Error::WorkerDied { .. })))
        .count();
    assert!(died <= 1, "only the task it was running: {died}");
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 200 - died);
    // A retry of the failed ones completes.
    assert_eq!(
        p.map(nap, std::iter::repeat_n(2, died)).unwrap().len(),
        died
    );
    assert!(!p.worker_pids().contains(&victim));
}

#[test]
fn terminate_during_work_fails_the_rest_and_reaps() {
    let p = pool(2);
    let pids = p.worker_pids();
    let slow = p.map_async(nap, std::iter::repeat_n(10_000, 4)).unwrap();
    let t0 = Instant::now();
    p.terminate();
    assert!(matches!(slow.get_timeout(LONG), Err(Error::Terminated)));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "terminate kills at once"
    );
    for pid in pids {
        assert!(!exists(pid), "worker {pid} reaped");
    }
    assert!(matches!(p.map(square, 0..2), Err(Error::Closed)));
    p.join_timeout(LONG).expect("join after terminate");
}

#[test]
fn drop_without_join_leaves_no_zombie_and_no_segment() {
    let p = pool(3);
    let pids = p.worker_pids();
    let prefix = p.prefix().to_owned();
    let _pending = p.apply_async(nap, 10_000).unwrap();
    drop(p);
    for pid in pids {
        assert!(!exists(pid), "worker {pid} reaped");
    }
    assert_none_starting(&format!("{prefix}-"));
}

#[test]
fn maxtasksperchild_recycles_workers() {
    let p = Pool::builder()
        .processes(1)
        .maxtasksperchild(2)
        .build()
        .unwrap();
    let pids = p.map_chunked(whoami, 0..6, 1).unwrap();
    assert_eq!(pids[0], pids[1]);
    assert_eq!(pids[2], pids[3]);
    assert_eq!(pids[4], pids[5]);
    assert!(pids[0] != pids[2] && pids[2] != pids[4], "{pids:?}");
}

/// A result above 256 KiB travels in a blob segment of the worker's own, which dies with
/// the worker: a worker retiring right after it (`maxtasksperchild`) must stay until the
/// pool has taken it.
#[test]
fn a_retiring_worker_hands_over_its_large_results() {
    let p = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .build()
        .unwrap();
    let prefix = p.prefix().to_owned();
    let inputs: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 140_000]).collect();
    let got = p.map_chunked(measure, inputs, 1).unwrap();
    for (i, (len, out)) in got.into_iter().enumerate() {
        assert_eq!(len, 140_000, "task {i}");
        assert_eq!(out.len(), 280_000, "task {i}");
    }
    drop(p);
    assert_none_starting(&format!("{prefix}-"));
}

static GREETING: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn set_greeting(g: String) {
    *GREETING.lock().unwrap() = g;
}

fn greet(name: String) -> String {
    format!("{} {name}", GREETING.lock().unwrap())
}

fn bad_init(_: ()) {
    panic!("no config");
}

#[test]
fn initializer_runs_in_every_worker_and_its_failure_stops_the_pool() {
    let p = Pool::builder()
        .processes(2)
        .initializer(set_greeting, "hi".to_string())
        .build()
        .unwrap();
    assert_eq!(p.map(greet, ["ann".to_string()]).unwrap(), ["hi ann"]);
    drop(p);

    let p = Pool::builder()
        .processes(2)
        .initializer(bad_init, ())
        .build()
        .unwrap();
    let t0 = Instant::now();
    loop {
        match p.map(square, 0..4) {
            Err(Error::InitializerFailed { message }) => {
                assert!(message.contains("no config"), "{message}");
                break;
            }
            // Raced the failure report: submitted before it arrived, then terminated.
            Err(Error::Terminated) => {}
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() < LONG);
    }
}

fn measure(v: Vec<u8>) -> (usize, Vec<u8>) {
    (v.len(), vec![7; v.len() * 2])
}

#[test]
fn mebibyte_arguments_and_results() {
    let p = pool(2);
    let prefix = p.prefix().to_owned();
    let big = vec![1u8; 3 << 20];
    let got = p.map(measure, [big.clone(), vec![2; 10], big]).unwrap();
    assert_eq!(got[0].0, 3 << 20);
    assert_eq!(got[0].1.len(), 6 << 20);
    assert!(got[0].1.iter().all(|&b| b == 7));
    assert_eq!(got[1].0, 10);
    assert_eq!(got[2].1.len(), 6 << 20);
    drop(p);
    assert_none_starting(&format!("{prefix}-"));
}

/// The string reversed: an output as large as the input, which differs from it.
fn reverse(s: String) -> String {
    s.chars().rev().collect()
}

/// Chunks and outcomes just under the inline limit (256 KiB) travel in the rings, four
/// to a 1 MiB ring at most, so batches of them are taken in part: every one arrives,
/// whole and in order. (Strings: serde writes a `Vec<u8>` a byte at a time, slow in a
/// debug build.)
#[test]
fn chunks_up_to_the_inline_limit_fill_the_rings_and_all_arrive() {
    let p = pool(2);
    let items: Vec<String> = (0..24u8)
        .map(|i| {
            let len = 200_000 + 2_000 * usize::from(i);
            let c = char::from(b'a' + i);
            format!("{c}{}", "-".repeat(len))
        })
        .collect();
    let got = p.map_chunked(reverse, items.clone(), 1).unwrap();
    assert_eq!(got.len(), items.len());
    for (i, (out, input)) in got.iter().zip(&items).enumerate() {
        assert_eq!(out.len(), input.len(), "task {i}");
        assert!(out.ends_with(&input[..1]), "task {i}: not its own input");
        assert_eq!(*out, reverse(input.clone()), "task {i}");
    }
}

#[test]
fn a_hundred_thousand_tiny_tasks() {
    let p = pool(2);
    let n = 100_000u64;
    let got = p.map(square, 0..n).unwrap();
    assert_eq!(got.len(), n as usize);
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, &v)| v == (i as u64) * (i as u64))
    );
    // And with a chunk size of 1: one message per task each way.
    let got = p.map_chunked(square, 0..20_000, 1).unwrap();
    assert_eq!(got[19_999], 19_999 * 19_999);
}

/// `Pool::new()` without a count, like Python's `Pool()`: one worker per CPU.
#[test]
fn new_without_a_count_starts_one_worker_per_cpu() {
    let p = Pool::new().expect("pool starts");
    let cpus = shmkit_process::cpu_count().min(shmkit_pool::MAX_PROCESSES as usize);
    assert_eq!(p.processes(), cpus);
    assert_eq!(p.worker_pids().len(), cpus);
    assert_eq!(
        p.map(square, 0..10).unwrap(),
        (0..10u64).map(square).collect::<Vec<_>>()
    );
}

#[test]
fn bad_settings_are_refused() {
    assert!(matches!(Pool::with_processes(0), Err(Error::Config(_))));
    // One limit for the number of processes across the crates (one constant, re-exported).
    assert_eq!(shmkit_pool::MAX_PROCESSES, shmkit_sync::MAX_PROCESSES);
    match Pool::with_processes(shmkit_pool::MAX_PROCESSES as usize + 1) {
        Err(Error::Config(m)) => assert!(m.contains("1..=1024"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Pool::builder().processes(1).prefetch(0).build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Pool::builder().processes(1).maxtasksperchild(0).build(),
        Err(Error::Config(_))
    ));
}

/// The pool's rings and collector wait per the chosen strategy: each one maps, survives
/// a worker killed mid-task, and ends cleanly.
#[test]
fn every_wait_strategy_maps_and_survives_a_death() {
    use shmkit_ring::WaitStrategy;
    for strategy in [
        WaitStrategy::Blocking,
        WaitStrategy::BusyPoll,
        WaitStrategy::Backoff,
    ] {
        let p = Pool::builder().processes(2).wait(strategy).build().unwrap();
        let squares = p.map(square, 0..2_000u64).unwrap();
        assert_eq!(
            squares,
            (0..2_000u64).map(|x| x * x).collect::<Vec<_>>(),
            "{strategy}"
        );
        let each = p.map_async(die_on_three, 0..6u32).unwrap();
        assert!(
            each.wait_timeout(LONG),
            "{strategy}: map returns instead of hanging"
        );
        let outcomes = each.get_each();
        assert!(
            matches!(outcomes[3], Err(Error::WorkerDied { .. })),
            "{strategy}: {outcomes:?}"
        );
        assert_eq!(p.map(square, 0..10u64).unwrap()[9], 81, "{strategy}");
        p.close();
        p.join_timeout(LONG).unwrap();
    }
}
