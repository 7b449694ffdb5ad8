//! `remote::Pool` with real worker processes (this test binary re-run) against a real
//! `redis-server`: every call shape, unknown functions, panics, workers SIGKILLed (one,
//! and at random during a map), long tasks kept alive by heartbeats, and the server
//! killed and restarted mid-map.

#![cfg(not(miri))] // real processes and sockets

mod support;

use shmkit_process::Process;
use shmkit_remote::{Error, Pool, Worker};
use shmkit_testing::faults::Rng;
use shmkit_testing::unique;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::Durability;

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(30);

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn picky(x: u64) -> u64 {
    assert!(x != 3, "three is not welcome");
    x
}

/// Sleeps `ms` milliseconds, then returns it.
fn nap(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// A task of some hundreds of microseconds.
fn work(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..20_000 {
        h = h
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    h
}

/// Every function the workers know, registered in the test and in each worker.
fn register_all() {
    shmkit_remote::register("square", square);
    shmkit_remote::register("picky", picky);
    shmkit_remote::register("nap", nap);
    shmkit_remote::register("work", work);
    shmkit_remote::register_star("add", add);
}

/// The worker processes' body.
fn serve((url, pool): (String, String)) -> u64 {
    register_all();
    Worker::new(&url, &pool)
        .reconnect_for(LONG)
        .serve()
        .expect("worker")
}

/// Worker processes, SIGKILLed on drop (also when the test fails).
struct Workers {
    url: String,
    pool: String,
    procs: Vec<Process<u64>>,
}

impl Workers {
    fn start(url: &str, pool: &str, n: usize) -> Workers {
        let mut w = Workers {
            url: url.to_owned(),
            pool: pool.to_owned(),
            procs: Vec::new(),
        };
        for _ in 0..n {
            w.add();
        }
        w
    }

    fn add(&mut self) {
        let p = shmkit_process::spawn(serve, (self.url.clone(), self.pool.clone())).unwrap();
        self.procs.push(p);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for p in &self.procs {
            let _ = p.kill();
        }
        for p in &mut self.procs {
            let _ = p.join_timeout(LONG);
        }
    }
}

#[test]
fn every_call_shape() {
    let Some(srv) = support::server() else { return };
    register_all();
    let name = unique("shapes");
    let pool = Pool::connect(&srv.url(), &name).unwrap();
    let _w = Workers::start(&srv.url(), &name, 2);
    assert_eq!(
        pool.map(square, 0..10).unwrap(),
        (0..10).map(|x| x * x).collect::<Vec<_>>()
    );
    assert_eq!(
        pool.map_chunked(square, 0..10, 3).unwrap(),
        (0..10).map(|x| x * x).collect::<Vec<_>>()
    );
    let ordered: Vec<u64> = pool
        .imap(square, 0..20)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(ordered, (0..20).map(|x| x * x).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..20)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    unordered.sort_unstable();
    assert_eq!(unordered, ordered);
    assert_eq!(pool.starmap(add, [(1, 2), (3, 4)]).unwrap(), [3, 7]);
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    let mut pending = pool.apply_async(nap, 300).unwrap();
    assert!(matches!(
        pending.get_timeout(Duration::from_millis(10)),
        Err(Error::Timeout)
    ));
    assert_eq!(pending.get_timeout(LONG).unwrap(), 300);
    assert!(matches!(pending.get_timeout(LONG), Err(Error::Taken)));
    pool.close();
    assert!(matches!(pool.apply(square, 1), Err(Error::Closed)));
    pool.join_timeout(LONG).unwrap();
}

#[test]
fn unknown_functions_and_panics_fail_only_their_task() {
    let Some(srv) = support::server() else { return };
    register_all();
    let name = unique("unknown");
    let pool = Pool::connect(&srv.url(), &name).unwrap();
    let _w = Workers::start(&srv.url(), &name, 1);

    fn never_registered(x: u64) -> u64 {
        x
    }
    assert!(matches!(
        pool.map(never_registered, 0..3),
        Err(Error::UnknownFunction {
            where_: "in this process",
            ..
        })
    ));
    match pool
        .apply_named::<u64, u64>("nobody-registered-this", 1)
        .unwrap()
        .get()
    {
        Err(Error::UnknownFunction { name, where_ }) => {
            assert_eq!(name, "nobody-registered-this");
            assert_eq!(where_, "in the worker");
        }
        other => panic!("expected UnknownFunction, got {other:?}"),
    }
    // Arguments of the wrong type for the registered function: that task fails.
    match pool
        .apply_named::<String, u64>("square", "not a number".into())
        .unwrap()
        .get()
    {
        Err(Error::Failed { message }) => assert!(message.contains("String"), "{message}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    let each = pool.map_async(picky, 0..6).unwrap().get_each();
    for (i, r) in each.iter().enumerate() {
        if i == 3 {
            assert!(
                matches!(r, Err(Error::Panicked { message }) if message.contains("three is not welcome"))
            );
        } else {
            assert_eq!(r.as_ref().unwrap(), &(i as u64));
        }
    }
    // The worker still serves.
    assert_eq!(pool.apply(square, 5).unwrap(), 25);
}

/// Waits until `pool`'s task stream has a pending entry (a worker started a task).
fn wait_until_running(srv: &support::Server, pool: &Pool) {
    let mut raw = srv.raw();
    let deadline = Instant::now() + LONG;
    loop {
        let v: redis::Value = redis::cmd("XPENDING")
            .arg(pool.tasks_key())
            .arg("workers")
            .query(&mut raw)
            .unwrap();
        if let redis::Value::Array(a) = &v
            && let Some(redis::Value::Int(n)) = a.first()
            && *n > 0
        {
            return;
        }
        assert!(Instant::now() < deadline, "no task ever started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A worker SIGKILLed mid-task: with no retries its task is `WorkerDied` naming it, and
/// the task is in the dead-letter stream; with retries the task runs again elsewhere.
#[test]
fn a_killed_worker_s_task_is_worker_died_or_retried() {
    let Some(srv) = support::server() else { return };
    register_all();
    for retries in [0, 2] {
        let name = unique("died");
        let pool = Pool::builder(&srv.url(), &name)
            .reclaim_after(Duration::from_millis(600))
            .retries(retries)
            .connect()
            .unwrap();
        let mut w = Workers::start(&srv.url(), &name, 1);
        let pending = pool.apply_async(nap, 5000).unwrap();
        wait_until_running(&srv, &pool);
        let pid = w.procs[0].pid();
        w.procs[0].kill().unwrap();
        let t = Instant::now();
        if retries == 0 {
            match pending.get() {
                Err(Error::WorkerDied {
                    worker, attempts, ..
                }) => {
                    assert!(
                        worker.contains(&format!("-{pid}-")),
                        "{worker} vs pid {pid}"
                    );
                    assert_eq!(attempts, 1);
                }
                other => panic!("expected WorkerDied, got {other:?}"),
            }
            assert!(t.elapsed() < LONG);
            let dead = pool.dead_letters().unwrap();
            assert_eq!(dead.len(), 1);
            assert_eq!(dead[0].function, "nap");
        } else {
            w.add(); // a live worker to retry on
            assert_eq!(pending.get().unwrap(), 5000);
            assert!(pool.dead_letters().unwrap().is_empty());
        }
    }
}

/// Tasks running three times longer than `reclaim_after` keep their claim through
/// heartbeats: neither is reclaimed (no `WorkerDied`, no dead letter).
#[test]
fn long_tasks_heartbeat_and_are_not_stolen() {
    let Some(srv) = support::server() else { return };
    register_all();
    let name = unique("long");
    let pool = Pool::builder(&srv.url(), &name)
        .reclaim_after(Duration::from_millis(600))
        .connect()
        .unwrap();
    let _w = Workers::start(&srv.url(), &name, 2);
    assert_eq!(
        pool.map_chunked(nap, [1800, 1800], 1).unwrap(),
        [1800, 1800]
    );
    assert!(pool.dead_letters().unwrap().is_empty());
}

/// Workers SIGKILLed at random (every 50-250 ms a random one, replaced at once) during a
/// map of 10 000 tasks in chunks of 1 (about 10 s on a loaded 2-core machine; set
/// SHMKIT_REMOTE_TASKS for another count); every task ends with its result or
/// `WorkerDied` naming a worker we killed, exactly once, and each `WorkerDied` task is in
/// the dead-letter stream.
#[test]
fn workers_killed_at_random_during_a_map() {
    let Some(srv) = support::server() else { return };
    register_all();
    let n: u64 = std::env::var("SHMKIT_REMOTE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let name = unique("torture");
    // Long enough that a live worker descheduled on a loaded machine keeps its task.
    let pool = Pool::builder(&srv.url(), &name)
        .reclaim_after(Duration::from_millis(800))
        .connect()
        .unwrap();
    let mut w = Workers::start(&srv.url(), &name, 2);
    let mut rng = Rng::new("workers_killed_at_random_during_a_map");
    let mut results = pool.imap_chunked(work, 0..n, 1).unwrap();
    let mut got = Vec::new();
    let mut killed = HashSet::new();
    let mut next_kill = Instant::now() + Duration::from_millis(50 + rng.below(200));
    let started = Instant::now();
    while got.len() < n as usize {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "map did not finish"
        );
        if Instant::now() >= next_kill {
            let i = rng.below(w.procs.len() as u64) as usize;
            let victim = w.procs.swap_remove(i);
            killed.insert(victim.pid());
            victim.kill().unwrap();
            let mut victim = victim;
            let _ = victim.join_timeout(LONG);
            w.add();
            next_kill = Instant::now() + Duration::from_millis(50 + rng.below(200));
        }
        match results.next_timeout(Duration::from_millis(20)) {
            Some(Err(Error::Timeout)) => continue,
            Some(r) => got.push(r),
            None => break,
        }
    }
    assert_eq!(got.len(), n as usize, "every task answered exactly once");
    assert!(results.next().is_none());
    let mut died = 0;
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, work(i as u64)),
            Err(Error::WorkerDied { worker, .. }) => {
                died += 1;
                let pid: u32 = worker.rsplit('-').nth(1).unwrap().parse().unwrap();
                assert!(killed.contains(&pid), "{worker} was not killed");
            }
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    assert_eq!(pool.dead_letters().unwrap().len(), died);
    eprintln!(
        "{n} tasks, {} workers killed, {died} WorkerDied, {:?}",
        killed.len(),
        started.elapsed()
    );
}

/// `redis-server` SIGKILLed and restarted mid-map with `appendonly yes`, `appendfsync
/// always`: the pool and its workers reconnect, and every task completes.
#[test]
fn server_killed_and_restarted_mid_map() {
    let Some(mut srv) = support::start(Durability::AofAlways, None) else {
        return;
    };
    register_all();
    let name = unique("restart");
    let pool = Pool::builder(&srv.url(), &name)
        .reclaim_after(Duration::from_secs(5))
        .connect()
        .unwrap();
    let _w = Workers::start(&srv.url(), &name, 2);
    let results = pool.map_async(nap, std::iter::repeat_n(5u64, 300)).unwrap();
    // Let some finish, then crash the server.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        std::thread::sleep(Duration::from_millis(10));
    }
    srv.kill();
    std::thread::sleep(Duration::from_millis(300));
    srv.restart();
    let each = results.get_each();
    assert_eq!(each.len(), 300);
    for (i, r) in each.iter().enumerate() {
        assert_eq!(r.as_ref().map_err(|e| format!("task {i}: {e}")), Ok(&5));
    }
}

#[test]
fn stop_workers_ends_them() {
    let Some(srv) = support::server() else { return };
    register_all();
    let name = unique("stop");
    let pool = Pool::connect(&srv.url(), &name).unwrap();
    let mut w = Workers::start(&srv.url(), &name, 1);
    assert_eq!(pool.apply(square, 3).unwrap(), 9);
    pool.stop_workers().unwrap();
    let served = w.procs[0].join_timeout(LONG).unwrap();
    assert_eq!(served, 1);
    w.procs.clear();
}

/// `terminate` answers every task not yet answered with `Terminated` at once, removes
/// the chunks nobody started from the task stream, and the workers keep serving.
#[test]
fn terminate_gives_up_on_pending_tasks() {
    let Some(srv) = support::server() else { return };
    register_all();
    let name = unique("terminate");
    let pool = Pool::connect(&srv.url(), &name).unwrap();
    let _w = Workers::start(&srv.url(), &name, 1);
    let pending = pool
        .map_async(nap, std::iter::repeat_n(2000u64, 4))
        .unwrap();
    wait_until_running(&srv, &pool);
    let t = Instant::now();
    pool.terminate().unwrap();
    let each = pending.get_each();
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert!(
        each.iter().all(|r| matches!(r, Err(Error::Terminated))),
        "{each:?}"
    );
    let left: u64 = redis::cmd("XLEN")
        .arg(pool.tasks_key())
        .query(&mut srv.raw())
        .unwrap();
    assert_eq!(left, 0, "chunks nobody started were deleted");
    assert!(matches!(pool.apply(square, 2), Err(Error::Closed)));
    let other = Pool::connect(&srv.url(), &name).unwrap();
    assert_eq!(
        other.apply(square, 4).unwrap(),
        16,
        "the worker still serves"
    );
}
