//! 1000 tasks await 100 queues fed by four child processes: all complete, and the waker
//! thread stays idle while nothing arrives. A test binary of its own, so that no other
//! test's waits run in this process while the waker thread's CPU time is measured.

#![cfg(not(any(miri, shmkit_loom)))] // real processes and syscalls

use shmkit_async::Async;
use shmkit_ring::Queue;
use shmkit_sync::{Event, Handle};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

shmkit_process::test_support!();

use shmkit_testing::runtime::{LONG, bounded, multi_thread};

fn feed((qs, go, per): (Vec<Queue<u64>>, Handle<Event>, u64)) {
    assert!(go.open().unwrap().wait_timeout(LONG), "never told to go");
    for q in &qs {
        for i in 0..per {
            q.put(&i).unwrap();
        }
    }
}

/// User + system CPU ticks of this process's waker threads.
fn waker_ticks() -> u64 {
    let mut ticks = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = t.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.starts_with("shmkit-waker") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    }
    ticks
}

#[test]
fn a_thousand_tasks_await_a_hundred_queues_fed_by_children() {
    let rt = multi_thread();
    rt.block_on(async {
        let queues: Vec<Queue<u64>> = (0..100).map(|_| Queue::new().unwrap()).collect();
        let go = Event::anonymous().unwrap();
        let kids: Vec<_> = queues
            .chunks(25)
            .map(|c| shmkit_process::spawn(feed, (c.to_vec(), go.handle(), 10)).unwrap())
            .collect();
        let queues: Vec<Arc<Async<Queue<u64>>>> = queues
            .into_iter()
            .map(|q| Arc::new(Async::new(q)))
            .collect();
        let started = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..1000)
            .map(|t| {
                let q = Arc::clone(&queues[t % 100]);
                let started = Arc::clone(&started);
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    q.get().await.unwrap()
                })
            })
            .collect();
        bounded(async {
            while started.load(Ordering::SeqCst) < 1000 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        // Every task waits; nothing arrives for 300 ms: the waker threads stay idle
        // (woken once per slice to let the tasks check their producers' liveness).
        let before = waker_ticks();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = waker_ticks() - before;
        assert!(
            idle <= 3,
            "waker threads used {idle} ticks in 300 ms of idling"
        );
        go.set();
        let mut sum = 0;
        for t in tasks {
            sum += bounded(t).await.unwrap();
        }
        // Each queue got 0..10 once; its 10 tasks took one each.
        assert_eq!(sum, 100 * (0..10).sum::<u64>());
        for k in kids {
            bounded(Async::new(k).join()).await.unwrap();
        }
        eprintln!(
            "waker threads: {}, idle ticks in 300 ms: {idle}",
            shmkit_async::waker_threads()
        );
    });
}
