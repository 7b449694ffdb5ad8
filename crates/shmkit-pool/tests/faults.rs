//! Fault injection for the pool (issue 8): workers SIGKILLed at random points during a
//! `map` of 10 000 tasks. Every wait is bounded; at the end no worker process and no
//! segment of the pool is left.

#![cfg(not(miri))] // real processes and syscalls

use shmkit_pool::{Error, Pool};
use std::time::{Duration, Instant};

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(60);

use shmkit_testing::assert_none_starting;
use shmkit_testing::faults::{Rng, still_our_child, torture};

/// A task that takes some microseconds (a few thousand multiply-adds).
fn work(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..6000 {
        h = h
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    h
}

/// Workers SIGKILLed at random moments (every 5-25 ms, a random worker) while a `map` of
/// 10 000 tasks runs, in chunks of the default size and of 10: the map returns (bounded);
/// every task has its correct result or `WorkerDied` naming a worker we killed; a retry
/// of the failed ones completes; after the pool is dropped every worker ever started is
/// reaped and the pool's segments are gone.
#[test]
fn workers_killed_at_random_during_a_map_of_10000_tasks() {
    let kills_wanted = (torture(200) / 10).max(1);
    let p = Pool::with_processes(2).unwrap();
    let prefix = p.prefix().to_owned();
    let mut seen_pids = std::collections::HashSet::new();
    let mut killed = std::collections::HashSet::new();
    let mut rng = Rng::new("workers_killed_at_random_during_a_map_of_10000_tasks");
    let (mut died_total, mut ok_total, mut maps) = (0usize, 0usize, 0);
    let t_start = Instant::now();
    for chunk in [None, Some(10)] {
        let n = 10_000u64;
        let each: Vec<Result<u64, Error>> = std::thread::scope(|s| {
            let outcome = s.spawn(|| match chunk {
                None => p.map_async(work, 0..n).unwrap().get_each(),
                Some(c) => {
                    let mut it = p.imap_chunked(work, 0..n, c).unwrap();
                    let mut v = Vec::new();
                    while let Some(r) = it.next_timeout(LONG) {
                        assert!(!matches!(r, Err(Error::Timeout)), "a result never came");
                        v.push(r);
                    }
                    v
                }
            });
            let mut kills = 0;
            let t0 = Instant::now();
            while !outcome.is_finished() && kills < kills_wanted {
                assert!(t0.elapsed() < LONG, "map never returned");
                std::thread::sleep(Duration::from_millis(5 + rng.below(20)));
                let pids = p.worker_pids();
                seen_pids.extend(pids.iter().copied());
                let Some(&victim) = pids.get(rng.below(pids.len() as u64) as usize) else {
                    continue;
                };
                if outcome.is_finished() {
                    break;
                }
                // SAFETY: kill(2) with a valid signal on a worker of this pool (our child).
                if unsafe { libc::kill(victim as i32, libc::SIGKILL) } == 0 {
                    killed.insert(victim);
                    kills += 1;
                }
            }
            outcome.join().unwrap()
        });
        maps += 1;
        assert_eq!(each.len(), 10_000);
        let mut failed = Vec::new();
        for (i, r) in each.into_iter().enumerate() {
            match r {
                Ok(v) => {
                    assert_eq!(v, work(i as u64), "task {i}");
                    ok_total += 1;
                }
                Err(Error::WorkerDied { pid, cause }) => {
                    assert!(
                        killed.contains(&pid),
                        "task {i}: {pid} was not killed by us"
                    );
                    assert_eq!(cause, "killed by SIGKILL");
                    failed.push(i as u64);
                }
                Err(e) => panic!("task {i}: {e}"),
            }
        }
        died_total += failed.len();
        // Retry the failed ones: all complete.
        let again = p.map(work, failed.iter().copied()).unwrap();
        for (x, v) in failed.iter().zip(again) {
            assert_eq!(v, work(*x));
        }
        seen_pids.extend(p.worker_pids());
    }
    let elapsed = t_start.elapsed();
    drop(p);
    for pid in &seen_pids {
        assert!(!still_our_child(*pid), "worker {pid} not reaped");
    }
    assert_none_starting(&format!("{prefix}-"));
    eprintln!(
        "pool: {maps} maps of 10000 tasks, workers killed: {}, tasks that got WorkerDied \
         (then retried): {died_total}, tasks that succeeded first time: {ok_total}, \
         workers started: {}, in {elapsed:?}",
        killed.len(),
        seen_pids.len()
    );
}
