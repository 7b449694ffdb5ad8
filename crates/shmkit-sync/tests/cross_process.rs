//! Every primitive across real processes (children started with shmkit-process), including
//! holders killed with SIGKILL. Every wait is bounded.

use std::time::{Duration, Instant};

use shmkit_process::{ProcessError, spawn};
use shmkit_sync::{
    Array, Barrier, Condvar, Dict, Error, Event, Handle, Mutex, RLock, Semaphore, Value,
};
use shmkit_testing::unique;

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(20);

fn join<R: serde::de::DeserializeOwned>(mut p: shmkit_process::Process<R>) -> R {
    p.join_timeout(LONG).expect("child finished in time")
}

// --- Mutex --------------------------------------------------------------------------

fn increment(args: (Handle<Mutex<u64>>, u32)) -> u32 {
    let m = args.0.open().unwrap();
    for _ in 0..args.1 {
        *m.lock().unwrap() += 1;
    }
    args.1
}

#[test]
fn mutex_counter_is_exact_across_processes() {
    let m = Mutex::anonymous(0u64).unwrap();
    let kids: Vec<_> = (0..2)
        .map(|_| spawn(increment, (m.handle(), 20_000)).unwrap())
        .collect();
    for _ in 0..20_000 {
        *m.lock().unwrap() += 1;
    }
    for k in kids {
        assert_eq!(join(k), 20_000);
    }
    assert_eq!(*m.lock().unwrap(), 60_000);
}

/// Take the lock, write a half-update, report, and wait to be killed.
fn hold_and_hang(args: (Handle<Mutex<[u64; 2]>>, Handle<Event>)) {
    let m = args.0.open().unwrap();
    let held = args.1.open().unwrap();
    let mut g = m.lock().unwrap();
    g[0] = 111; // the first half of an update whose second half never comes
    held.set();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_killed_holder_passes_the_mutex_on_with_owner_died_and_the_data_intact() {
    let m = Mutex::anonymous([1u64, 1]).unwrap();
    let held = Event::anonymous().unwrap();
    let child = spawn(hold_and_hang, (m.handle(), held.handle())).unwrap();
    assert!(held.wait_timeout(LONG), "child took the lock");
    assert!(m.try_lock().is_none(), "held by the child");
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(30)),
        Err(Error::Timeout { .. })
    ));
    child.kill().unwrap();
    let t0 = Instant::now();
    let mut g = m
        .lock_timeout(Duration::from_secs(5))
        .expect("recovered within the bound");
    let recovery = t0.elapsed();
    assert!(g.owner_died(), "the next locker is told");
    assert_eq!(*g, [111, 1], "the half-update is there to repair");
    assert!(
        recovery < Duration::from_secs(1),
        "recovered in {recovery:?}"
    );
    g[1] = 111;
    drop(g);
    assert!(
        m.lock().unwrap().owner_died(),
        "still inconsistent until marked"
    );
    m.lock().unwrap().mark_consistent();
    let g = m.lock().unwrap();
    assert!(!g.owner_died());
    assert_eq!(*g, [111, 111]);
    assert_eq!(m.recoveries(), 1);
    drop(g);
    assert!(matches!(
        { child }.join(),
        Err(ProcessError::Signaled { .. })
    ));
}

#[test]
fn opening_a_mutex_as_another_type_is_a_mismatch() {
    let name = unique("mismatch");
    let _m = Mutex::create(&name, 0u64).unwrap();
    let err = Mutex::<u32>::open(&name).unwrap_err();
    assert!(err.to_string().contains("you asked for"), "{err}");
    assert!(matches!(Event::open(&name), Err(Error::Segment(_))));
}

// --- Event --------------------------------------------------------------------------

fn wait_event(args: (Handle<Event>, u64)) -> bool {
    args.0
        .open()
        .unwrap()
        .wait_timeout(Duration::from_millis(args.1))
}

#[test]
fn event_set_releases_every_waiter_in_other_processes() {
    let ev = Event::anonymous().unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| spawn(wait_event, (ev.handle(), 20_000)).unwrap())
        .collect();
    ev.set();
    for w in waiters {
        assert!(join(w));
    }
    ev.clear();
    assert!(
        !join(spawn(wait_event, (ev.handle(), 50)).unwrap()),
        "times out when clear"
    );
}

/// Ping-pong: wait for `ping`, clear it, set `pong`; `n` times.
fn ponger(args: (Handle<Event>, Handle<Event>, u32)) -> u32 {
    let (ping, pong) = (args.0.open().unwrap(), args.1.open().unwrap());
    for i in 0..args.2 {
        if !ping.wait_timeout(LONG) {
            return i;
        }
        ping.clear();
        pong.set();
    }
    args.2
}

#[test]
fn no_wakeup_is_lost_over_many_set_clear_wait_cycles() {
    const N: u32 = 2_000;
    let ping = Event::anonymous().unwrap();
    let pong = Event::anonymous().unwrap();
    let child = spawn(ponger, (ping.handle(), pong.handle(), N)).unwrap();
    for i in 0..N {
        ping.set();
        assert!(
            pong.wait_timeout(Duration::from_secs(10)),
            "lost wake-up at cycle {i}"
        );
        pong.clear();
    }
    assert_eq!(join(child), N);
}

// --- Semaphore, Condvar, RLock ----------------------------------------------------------

fn take_permits(args: (Handle<Semaphore>, Handle<Event>, Handle<Event>)) {
    let sem = args.0.open().unwrap();
    sem.acquire();
    sem.acquire();
    args.1.open().unwrap().set();
    assert!(args.2.open().unwrap().wait_timeout(LONG));
    sem.release();
}

#[test]
fn semaphore_permits_are_shared_between_processes() {
    let sem = Semaphore::anonymous(2).unwrap();
    let taken = Event::anonymous().unwrap();
    let go = Event::anonymous().unwrap();
    let child = spawn(take_permits, (sem.handle(), taken.handle(), go.handle())).unwrap();
    assert!(taken.wait_timeout(LONG));
    assert!(!sem.try_acquire());
    assert!(matches!(
        sem.acquire_timeout(Duration::from_millis(30)),
        Err(Error::Timeout { .. })
    ));
    go.set();
    sem.acquire_timeout(LONG)
        .expect("the child's release wakes us");
    join(child);
}

fn set_flag_and_notify(args: (Handle<Mutex<u32>>, Handle<Condvar>)) {
    let (m, cv) = (args.0.open().unwrap(), args.1.open().unwrap());
    std::thread::sleep(Duration::from_millis(20));
    *m.lock().unwrap() = 7;
    cv.notify_all();
}

#[test]
fn condvar_wakes_a_waiter_in_another_process() {
    let m = Mutex::anonymous(0u32).unwrap();
    let cv = Condvar::anonymous().unwrap();
    let child = spawn(set_flag_and_notify, (m.handle(), cv.handle())).unwrap();
    let deadline = Instant::now() + LONG;
    let mut g = m.lock().unwrap();
    while *g != 7 {
        assert!(Instant::now() < deadline, "never notified");
        g = cv.wait_timeout(g, Duration::from_millis(500)).unwrap().0;
    }
    drop(g);
    join(child);
}

fn try_rlock(h: Handle<RLock>) -> bool {
    h.open()
        .unwrap()
        .acquire_timeout(Duration::from_millis(30))
        .is_ok()
}

#[test]
fn rlock_is_reentrant_for_its_thread_and_exclusive_across_processes() {
    let lock = RLock::anonymous().unwrap();
    let a = lock.acquire().unwrap();
    let b = lock.acquire().unwrap();
    assert_eq!(lock.depth(), 2);
    assert!(
        !join(spawn(try_rlock, lock.handle()).unwrap()),
        "another process must wait"
    );
    drop(b);
    assert!(
        !join(spawn(try_rlock, lock.handle()).unwrap()),
        "still held once"
    );
    drop(a);
    assert!(join(spawn(try_rlock, lock.handle()).unwrap()), "free now");
}

// --- Barrier ------------------------------------------------------------------------

fn barrier_rounds(args: (Handle<Barrier>, u32)) -> u32 {
    let b = args.0.open().unwrap();
    for _ in 0..args.1 {
        b.wait_timeout(LONG).unwrap();
    }
    args.1
}

#[test]
fn barrier_releases_all_parties_each_round() {
    let b = Barrier::anonymous(3).unwrap();
    let kids: Vec<_> = (0..2)
        .map(|_| spawn(barrier_rounds, (b.handle(), 5)).unwrap())
        .collect();
    let mut indices = Vec::new();
    for _ in 0..5 {
        indices.push(b.wait_timeout(LONG).unwrap());
    }
    for k in kids {
        assert_eq!(join(k), 5);
    }
    assert!(indices.iter().all(|&i| i < 3));
}

fn wait_then_die(h: Handle<Barrier>) {
    let b = h.open().unwrap();
    // Round 1 completes with the parent; then this process dies before round 2.
    b.wait_timeout(LONG).unwrap();
    std::process::abort();
}

#[test]
fn a_dead_party_breaks_the_barrier_instead_of_hanging() {
    let b = Barrier::anonymous(2).unwrap();
    let child = spawn(wait_then_die, b.handle()).unwrap();
    b.wait_timeout(LONG).unwrap();
    let t0 = Instant::now();
    let err = b.wait_timeout(LONG).unwrap_err();
    assert!(matches!(err, Error::BrokenBarrier { .. }), "{err}");
    assert!(err.to_string().contains("died"), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "noticed in {:?}",
        t0.elapsed()
    );
    assert!({ child }.join().is_err());
    b.reset();
    assert!(!b.is_broken());
}

#[test]
fn a_barrier_timeout_breaks_it_for_everyone() {
    let b = Barrier::anonymous(2).unwrap();
    let err = b.wait_timeout(Duration::from_millis(30)).unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(b.is_broken());
    assert!(matches!(
        b.wait_timeout(LONG),
        Err(Error::BrokenBarrier { .. })
    ));
}

// --- Value, Array, Dict ---------------------------------------------------------------

/// Add 10 000 to `atomic` with `fetch_add` and 10 000 to `locked` under its lock. (Mixing
/// both kinds of update on one value would race: the atomic paths do not take the lock,
/// as with Python's `lock=False` access.)
fn bump_values(args: (Handle<Value<i64>>, Handle<Value<i64>>)) {
    let (atomic, locked) = (args.0.open().unwrap(), args.1.open().unwrap());
    for _ in 0..10_000 {
        atomic.fetch_add(1);
        *locked.lock().unwrap() += 1;
    }
}

#[test]
fn value_atomics_and_lock_are_exact_across_processes() {
    let atomic = Value::anonymous(0i64).unwrap();
    let locked = Value::anonymous(0i64).unwrap();
    let kids: Vec<_> = (0..2)
        .map(|_| spawn(bump_values, (atomic.handle(), locked.handle())).unwrap())
        .collect();
    for k in kids {
        join(k);
    }
    assert_eq!(atomic.load(), 20_000);
    assert_eq!(locked.get().unwrap(), 20_000);
}

fn fill_array(h: Handle<Array<i32>>) {
    let a = h.open().unwrap();
    for i in 0..a.len() {
        a.set(i, i as i32 * 2).unwrap();
    }
}

#[test]
fn array_written_by_a_child_reads_back() {
    let a = Array::<i32>::anonymous_zeroed(5).unwrap();
    join(spawn(fill_array, a.handle()).unwrap());
    assert_eq!(a.to_vec().unwrap(), [0, 2, 4, 6, 8]);
    assert!(matches!(
        a.get(5),
        Err(Error::IndexOutOfRange {
            index: 5,
            len: 5,
            ..
        })
    ));
}

fn dict_insert(args: (Handle<Dict<u32, String>>, u32)) {
    let d = args.0.open().unwrap();
    d.insert(args.1, format!("from child {}", args.1)).unwrap();
}

fn dict_hold_and_hang(args: (Handle<Dict<u32, String>>, Handle<Event>)) {
    let d = args.0.open().unwrap();
    let held = args.1.open().unwrap();
    d.hold_lock_while(|| {
        held.set();
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
}

#[test]
fn dict_is_shared_and_survives_a_killed_holder() {
    let d = Dict::<u32, String>::anonymous().unwrap();
    d.insert(0, "parent".into()).unwrap();
    for i in 1..=3 {
        join(spawn(dict_insert, (d.handle(), i)).unwrap());
    }
    assert_eq!(d.len().unwrap(), 4);
    let held = Event::anonymous().unwrap();
    let child = spawn(dict_hold_and_hang, (d.handle(), held.handle())).unwrap();
    assert!(held.wait_timeout(LONG));
    // Readers take no lock: a writer holding it (alive, then dead) never delays them.
    let t0 = Instant::now();
    for _ in 0..1000 {
        assert_eq!(d.get(&2).unwrap().as_deref(), Some("from child 2"));
        assert!(d.contains_key(&0).unwrap());
        assert_eq!(d.len().unwrap(), 4);
    }
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    child.kill().unwrap();
    assert_eq!(d.get(&3).unwrap().as_deref(), Some("from child 3"));
    let t0 = Instant::now();
    d.insert(9, "after the crash".into()).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(d.recoveries(), 1);
    let snap = d.snapshot().unwrap();
    assert_eq!(snap.len(), 5);
    assert_eq!(snap[&2], "from child 2");
    drop(child);
}

#[test]
fn a_full_dict_says_so_and_keeps_its_contents() {
    let d = Dict::<u32, Vec<u8>>::builder()
        .max_entries(1)
        .anonymous()
        .unwrap();
    d.insert(1, vec![1; 100]).unwrap();
    let err = d.insert(2, vec![2; 200]).unwrap_err();
    assert!(matches!(err, Error::Full { .. }), "{err}");
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(d.get(&1).unwrap(), Some(vec![1; 100]));
}

fn dict_fill(args: (Handle<Dict<u64, String>>, u64, u64)) -> u64 {
    let (h, from, to) = args;
    let d = h.open().unwrap();
    for k in from..to {
        d.insert(k, format!("value {k}")).unwrap();
    }
    d.generation()
}

/// A child fills the dict far past its first table: the parent (which made it) moves to
/// the child's generations and finds every entry; the grown dict goes on working here.
#[test]
fn a_dict_grown_by_a_child_is_seen_by_the_parent() {
    let d = Dict::<u64, String>::anonymous().unwrap();
    d.insert(u64::MAX, "parent".into()).unwrap();
    let generation = join(spawn(dict_fill, (d.handle(), 0, 30_000)).unwrap());
    assert!(generation > 5, "generation {generation}");
    assert_eq!(d.generation(), generation);
    assert_eq!(d.len().unwrap(), 30_001);
    for k in (0..30_000).step_by(101) {
        assert_eq!(d.get(&k).unwrap(), Some(format!("value {k}")));
    }
    assert_eq!(d.get(&u64::MAX).unwrap().as_deref(), Some("parent"));
    d.insert(30_000, "after".into()).unwrap();
    assert_eq!(d.len().unwrap(), 30_002);
}

/// Read keys `0..n` until `stop` is set; every value found must be the one written for
/// its key (never half-written, never another key's). Returns the reads done.
fn dict_reader(args: (Handle<Dict<u64, String>>, Handle<Event>, u64)) -> u64 {
    let (h, stop, n) = args;
    let d = h.open().unwrap();
    let stop = stop.open().unwrap();
    let mut reads = 0;
    while !stop.is_set() {
        for k in 0..n {
            if let Some(v) = d.get(&k).unwrap() {
                assert_eq!(v, format!("value {k}"), "key {k}");
            }
            reads += 1;
        }
    }
    reads
}

/// Two reader processes read while this process inserts enough to grow the table many
/// times: readers never block and never see a wrong value; every key is there at the end.
#[test]
fn readers_in_other_processes_follow_growth() {
    let d = Dict::<u64, String>::anonymous().unwrap();
    let stop = Event::anonymous().unwrap();
    let readers: Vec<_> = (0..2)
        .map(|_| spawn(dict_reader, (d.handle(), stop.handle(), 2_000)).unwrap())
        .collect();
    for k in 0..20_000 {
        d.insert(k, format!("value {k}")).unwrap();
    }
    stop.set();
    for r in readers {
        assert!(join(r) > 0);
    }
    assert_eq!(d.len().unwrap(), 20_000);
}
