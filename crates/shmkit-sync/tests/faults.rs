//! Fault injection for the robust lock (issue 8): a holder that dies at each step of one
//! lock + update (crash points), and holders SIGKILLed at random points (kill tests) of
//! a `Mutex` and a `Dict`. Every wait is bounded, every name unique; each test checks
//! that it left no segment in /dev/shm and no child process behind.
//!
//! `SHMKIT_TORTURE=<n>` sets the number of kills (default 200: 100 for the mutex, 50
//! for the dict).

#![cfg(not(miri))] // real processes and syscalls

use std::time::{Duration, Instant};

use shmkit_process::{Process, spawn};
use shmkit_sync::dict_faults::{CrashPoint, set_crash_hook};
use shmkit_sync::{Dict, Event, Handle, Mutex};

shmkit_process::test_support!();

/// How soon the next locker must get a dead holder's lock (the lock checks the holder's
/// liveness every 10 ms slice; this leaves room for a loaded 2-core machine).
const RECOVERY_BOUND: Duration = Duration::from_secs(1);

use shmkit_testing::faults::{BOUND, Rng, die, join_killed, torture};
use shmkit_testing::{assert_unlinked, shm_names_starting, unique};

fn fnv(x: u64) -> u64 {
    x.to_le_bytes().iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

// --- 1. crash points: lock + update -------------------------------------------------

/// The steps of one locked update of `[a, b]` (invariant `b == fnv(a)`); the holder dies
/// right after the named one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum Step {
    /// The lock is taken, nothing written.
    Locked,
    /// `a` written, `b` not: the invariant is broken.
    HalfUpdated,
    /// Both written, the guard not dropped: the lock is still held.
    Updated,
    /// The guard dropped: the lock is free.
    Unlocked,
    /// A locker that got `owner_died()` repaired the data and died before
    /// `mark_consistent()`.
    RepairedNotMarked,
}

fn update_and_die_at(args: (Handle<Mutex<[u64; 2]>>, Step)) {
    let (h, step) = args;
    let m = h.open().unwrap();
    let mut g = m.lock_timeout(BOUND).unwrap();
    if step == Step::RepairedNotMarked {
        assert!(g.owner_died());
        let a = g[0];
        g[1] = fnv(a);
        die();
    }
    if step == Step::Locked {
        die();
    }
    g[0] = 41;
    if step == Step::HalfUpdated {
        die();
    }
    g[1] = fnv(41);
    if step == Step::Updated {
        die();
    }
    drop(g);
    die();
}

/// For each step: the next locker gets the lock within the bound; `owner_died()` iff the
/// holder died holding it; the data is exactly as the dead holder left it (old, half, or
/// new), repairable, and `owner_died()` persists until `mark_consistent()` — even across
/// a second holder that died while repairing.
#[test]
fn mutex_update_crash_points_owner_died_and_repair() {
    for step in [
        Step::Locked,
        Step::HalfUpdated,
        Step::Updated,
        Step::Unlocked,
    ] {
        let name = unique("step");
        let m = Mutex::create(&name, [7u64, fnv(7)]).unwrap();
        join_killed(spawn(update_and_die_at, (m.handle(), step)).unwrap());
        let t0 = Instant::now();
        let mut g = m.lock_timeout(BOUND).unwrap();
        let waited = t0.elapsed();
        assert!(waited < RECOVERY_BOUND, "{step:?}: recovered in {waited:?}");
        let died_holding = step != Step::Unlocked;
        assert_eq!(g.owner_died(), died_holding, "{step:?}");
        let expected = match step {
            Step::Locked => [7, fnv(7)],
            Step::HalfUpdated => [41, fnv(7)],
            _ => [41, fnv(41)],
        };
        assert_eq!(*g, expected, "{step:?}: the data as the holder left it");
        if step == Step::HalfUpdated {
            // A second holder dies while repairing: the flag survives it.
            drop(g);
            join_killed(spawn(update_and_die_at, (m.handle(), Step::RepairedNotMarked)).unwrap());
            g = m.lock_timeout(BOUND).unwrap();
            assert!(g.owner_died(), "still inconsistent: nobody marked it");
            assert_eq!(*g, [41, fnv(41)], "the repair that was written");
        }
        if g.owner_died() {
            let a = g[0];
            g[1] = fnv(a);
            g.mark_consistent();
        }
        drop(g);
        let g = m.lock_timeout(BOUND).unwrap();
        assert!(!g.owner_died());
        assert_eq!(g[1], fnv(g[0]));
        let expect_recoveries = match step {
            Step::Unlocked => 0,
            Step::HalfUpdated => 2,
            _ => 1,
        };
        drop(g);
        assert_eq!(m.recoveries(), expect_recoveries, "{step:?}");
        drop(m);
        assert_unlinked(&name);
    }
}

// --- 2. kill tests: mutex holders killed at random ------------------------------------

/// Shared state: `[count, check, writer, repaired, take-overs seen]`. An increment
/// writes `writer`, `count + 1`, `check = fnv(count)`, then clears `writer`.
/// Consistent iff `writer == 0` and `check == fnv(count)`.
type Counter = [u64; 5];

fn consistent(c: &Counter) -> bool {
    c[2] == 0 && c[1] == fnv(c[0])
}

/// After `owner_died()`: roll a half-done increment forward (or find nothing to do),
/// counting the take-over and whether the data was inconsistent.
fn repair(c: &mut Counter) {
    c[3] += u64::from(!consistent(c));
    c[4] += 1;
    c[1] = fnv(c[0]);
    c[2] = 0;
}

/// Child: increment until the count reaches `target` (then wait to be killed, bounded).
/// A consistent state is required whenever `owner_died()` is false.
fn increment_until_killed(args: (Handle<Mutex<Counter>>, u64)) {
    let (h, target) = args;
    let m = h.open().unwrap();
    let me = u64::from(std::process::id());
    loop {
        let mut g = m.lock_timeout(BOUND).unwrap();
        if g.owner_died() {
            repair(&mut g);
            g.mark_consistent();
        }
        assert!(
            consistent(&g),
            "inconsistent data without owner_died: {:?}",
            *g
        );
        if g[0] >= target {
            drop(g);
            std::thread::sleep(BOUND);
            return;
        }
        g[2] = me;
        g[0] += 1;
        let n = g[0];
        g[1] = fnv(n);
        g[2] = 0;
    }
}

/// Two processes increment a counter under the mutex while we SIGKILL them at random
/// points (≥ 100 kills by default), replacing each. After every kill the next locker
/// (this process) gets the lock within the bound — with `owner_died()` when the victim
/// held it — and repairs a half-done increment by rolling it forward. At the end the
/// count is exactly the target (no increment lost or doubled) and consistent.
#[test]
fn mutex_holders_killed_at_random_points() {
    let kills = torture(200) / 2;
    let mut rng = Rng::new("mutex_holders_killed_at_random_points");
    let name = unique("kill-mutex");
    let target = 1 << 40; // never reached during the kills
    let m = Mutex::create(&name, [0u64, fnv(0), 0, 0, 0]).unwrap();
    let mut running: Vec<Process<()>> = Vec::new();
    let (mut died_holding, mut max_recovery) = (0u64, Duration::ZERO);
    for _ in 0..kills {
        while running.len() < 2 {
            running.push(spawn(increment_until_killed, (m.handle(), target)).unwrap());
        }
        // Let it run a random number of increments (bounded), then kill it.
        let start = m.lock_timeout(BOUND).unwrap()[0];
        let goal = start + 1 + rng.below(200);
        let t0 = Instant::now();
        loop {
            let g = m.lock_timeout(BOUND).unwrap();
            if g[0] >= goal {
                break;
            }
            drop(g);
            assert!(t0.elapsed() < BOUND, "no progress");
            std::thread::yield_now();
        }
        let victim = running.remove(rng.below(2) as usize);
        victim.kill().unwrap();
        join_killed(victim);
        let t0 = Instant::now();
        let mut g = m.lock_timeout(BOUND).unwrap();
        let waited = t0.elapsed();
        if g.owner_died() {
            died_holding += 1;
            max_recovery = max_recovery.max(waited);
            repair(&mut g);
            g.mark_consistent();
        }
        assert!(consistent(&g), "{:?}", *g);
    }
    for p in running.drain(..) {
        p.kill().unwrap();
        join_killed(p);
    }
    // Finish: the survivors' count is exact from here on.
    let mut g = m.lock_timeout(BOUND).unwrap();
    if g.owner_died() {
        died_holding += 1;
        repair(&mut g);
        g.mark_consistent();
    }
    let reached = g[0];
    drop(g);
    let final_target = reached + 1000;
    let kids: Vec<_> = (0..2)
        .map(|_| spawn(increment_until_killed, (m.handle(), final_target)).unwrap())
        .collect();
    let t0 = Instant::now();
    while m.lock_timeout(BOUND).unwrap()[0] < final_target {
        assert!(t0.elapsed() < BOUND, "no progress");
        std::thread::yield_now();
    }
    for p in kids {
        p.kill().unwrap();
        join_killed(p);
    }
    let g = m.lock_timeout(BOUND).unwrap();
    assert_eq!(g[0], final_target, "exact: no increment lost or doubled");
    assert!(consistent(&g));
    let (repaired, seen) = (g[3], g[4]);
    drop(g);
    assert!(
        max_recovery < RECOVERY_BOUND,
        "recovery took {max_recovery:?}"
    );
    // Every take-over was seen (and repaired) by the next locker, except where that
    // locker was itself killed before recording it; then its successor saw another.
    let recoveries = u64::from(m.recoveries());
    assert!(
        seen <= recoveries && recoveries <= 2 * seen.max(1),
        "{seen} of {recoveries}"
    );
    eprintln!(
        "mutex kills survived: {kills}, take-overs from a dead holder: {recoveries} (seen and \
         repaired: {seen}, of which half-done increments rolled forward: {repaired}; taken \
         over by this process: {died_holding}), slowest take-over here: {max_recovery:?}, \
         increments: {final_target}"
    );
    drop(m);
    assert_unlinked(&name);
}

// --- 2. kill tests: Dict holders killed at random --------------------------------------

/// Child: insert `(id, (n, fnv(n)))` for n = 1, 2, ... until killed; signals `started`
/// after its first insert.
type Entries = Dict<u64, (u64, u64)>;

fn dict_writer(args: (Handle<Entries>, Handle<Event>, u64)) {
    let (h, started, id) = args;
    let d = h.open().unwrap();
    let started = started.open().unwrap();
    for n in 1.. {
        d.insert(id, (n, fnv(n))).unwrap();
        if n == 1 {
            started.set();
        }
        if n == 100_000 {
            std::thread::sleep(BOUND);
            return;
        }
    }
}

/// Writers of a `Dict` SIGKILLed at random points (50 by default; the two-area update
/// is crash-atomic): every later operation succeeds within the bound, the contents always
/// decode, each writer's entry is whole (its checksum matches) and never goes backwards.
#[test]
fn dict_writers_killed_at_random_points() {
    let kills = torture(200) / 4;
    let mut rng = Rng::new("dict_writers_killed_at_random_points");
    let name = unique("kill-dict");
    let d = Dict::<u64, (u64, u64)>::create(&name).unwrap();
    let mut last = std::collections::HashMap::<u64, u64>::new();
    let mut max_op = Duration::ZERO;
    for id in 0..kills {
        let started = Event::anonymous().unwrap();
        let child = spawn(dict_writer, (d.handle(), started.handle(), id % 8)).unwrap();
        assert!(started.wait_timeout(BOUND), "writer {id} started");
        // A random number of the writer's inserts, observed through snapshots.
        for _ in 0..rng.below(20) {
            d.snapshot_timeout(BOUND).unwrap();
        }
        child.kill().unwrap();
        join_killed(child);
        let t0 = Instant::now();
        d.insert(1000, (id, fnv(id))).unwrap(); // needs the lock: recovers it
        let snap = d.snapshot_timeout(BOUND).unwrap();
        max_op = max_op.max(t0.elapsed());
        for (&k, &(n, sum)) in &snap {
            assert_eq!(sum, fnv(n), "entry {k} torn");
            if k < 1000 {
                let prev = last.insert(k, n).unwrap_or(0);
                assert!(
                    n >= prev || id % 8 == k,
                    "entry {k} went back from {prev} to {n}"
                );
            }
        }
        // This writer's own entry is at least its first insert.
        assert!(snap[&(id % 8)].0 >= 1);
        last.insert(id % 8, 0); // the next writer of this key starts again at 1
    }
    assert!(
        max_op < RECOVERY_BOUND,
        "an operation after a kill took {max_op:?}"
    );
    eprintln!(
        "dict kills survived: {kills}, take-overs from a dead holder: {}, slowest operation \
         after a kill: {max_op:?}",
        d.recoveries()
    );
    drop(d);
    assert_unlinked(&name);
    assert_no_tables(&name);
}

// --- 3. crash points: dict insert, remove and growth -----------------------------------

/// Only the dict's own segment and its current table are linked.
fn assert_only_current_table(name: &str, d: &Entries) {
    let mut want = vec![name.to_owned(), d.table_segment_name()];
    want.sort();
    assert_eq!(shm_names_starting(name), want, "segments of dict {name}");
}

fn assert_no_tables(name: &str) {
    assert_eq!(
        shm_names_starting(name),
        Vec::<String>::new(),
        "left in /dev/shm"
    );
}

/// Every entry `k -> (k, fnv(k))` is whole, and the count agrees with the entries.
fn assert_whole(d: &Entries) -> std::collections::BTreeMap<u64, (u64, u64)> {
    let snap = d.snapshot_timeout(BOUND).unwrap();
    for (&k, &(n, sum)) in &snap {
        assert_eq!((n, sum), (k, fnv(k)), "entry {k} torn");
    }
    assert_eq!(d.len().unwrap(), snap.len(), "count repaired");
    snap
}

static DIE_AT: std::sync::OnceLock<CrashPoint> = std::sync::OnceLock::new();

fn die_if_target(p: CrashPoint) {
    if DIE_AT.get() == Some(&p) {
        die();
    }
}

/// Child: die at `point` of the first write that reaches it — removing keys `0..` for
/// `Tombstoned`, inserting new keys `1000..` otherwise (which grows the table soon).
fn dict_die_at(args: (Handle<Entries>, CrashPoint)) {
    let (h, point) = args;
    let d = h.open().unwrap();
    DIE_AT.set(point).unwrap();
    set_crash_hook(die_if_target);
    for k in 0..100_000 {
        if point == CrashPoint::Tombstoned {
            d.remove(&k).unwrap();
        } else {
            d.insert(1000 + k, (1000 + k, fnv(1000 + k))).unwrap();
        }
    }
    panic!("never reached {point:?}");
}

/// A writer killed right after each step of an insert, a remove and a growth: the next
/// writer takes over within the bound, every entry is whole, the count is right, the
/// half-made or replaced table segment is removed, and the dict goes on growing.
#[test]
fn dict_crash_points_in_insert_remove_and_growth() {
    for point in [
        CrashPoint::RecordWritten,
        CrashPoint::HeapBumped,
        CrashPoint::Published,
        CrashPoint::Tombstoned,
        CrashPoint::GrowthCreated,
        CrashPoint::GrowthFilled,
        CrashPoint::GrowthPublished,
        CrashPoint::GrowthUnlinked,
    ] {
        let name = unique("dict-step");
        let d = Entries::create(&name).unwrap();
        d.update((0..40).map(|k| (k, (k, fnv(k))))).unwrap();
        let generation = d.generation();
        join_killed(spawn(dict_die_at, (d.handle(), point)).unwrap());
        // The new generation counts once published, not before.
        let grown = matches!(
            point,
            CrashPoint::GrowthPublished | CrashPoint::GrowthUnlinked
        );
        assert_eq!(d.generation() > generation, grown, "{point:?}");
        let t0 = Instant::now();
        d.insert(5000, (5000, fnv(5000))).unwrap(); // takes the lock over, repairs
        let waited = t0.elapsed();
        assert!(
            waited < RECOVERY_BOUND,
            "{point:?}: recovered in {waited:?}"
        );
        assert_eq!(d.recoveries(), 1, "{point:?}");
        let snap = assert_whole(&d);
        match point {
            CrashPoint::Tombstoned => assert!(!snap.contains_key(&0), "{point:?}"),
            _ => assert!((0..40).all(|k| snap.contains_key(&k)), "{point:?}"),
        }
        if point == CrashPoint::Published {
            assert!(snap.contains_key(&1000), "the published insert is there");
        }
        assert_only_current_table(&name, &d);
        // The dict goes on: more growth, every entry found.
        d.update((6000..9000).map(|k| (k, (k, fnv(k))))).unwrap();
        let snap = assert_whole(&d);
        assert!((6000..9000).all(|k| snap.contains_key(&k)), "{point:?}");
        assert_only_current_table(&name, &d);
        drop(d);
        assert_no_tables(&name);
    }
}

/// Child: insert new keys `id << 32 | n` for n = 0, 1, ... (growing the table again and
/// again) until killed; signals `started` after its first insert.
fn dict_grower(args: (Handle<Entries>, Handle<Event>, u64)) {
    let (h, started, id) = args;
    let d = h.open().unwrap();
    let started = started.open().unwrap();
    for n in 0..1_000_000 {
        let k = id << 32 | n;
        d.insert(k, (k, fnv(k))).unwrap();
        if n == 0 {
            started.set();
        }
    }
    std::thread::sleep(BOUND);
}

/// Writers that keep growing a `Dict` SIGKILLed at random points (25 by default), many
/// of them mid-growth: every later operation succeeds within the bound, every entry is
/// whole, each writer's keys are a gapless prefix (inserts land whole and in order), and
/// no table segment is left over besides the current one.
#[test]
fn dict_growers_killed_at_random_points() {
    let kills = torture(200) / 8;
    let mut rng = Rng::new("dict_growers_killed_at_random_points");
    let name = unique("kill-grow");
    let d = Entries::create(&name).unwrap();
    let mut max_op = Duration::ZERO;
    let first_generation = d.generation();
    for id in 1..=kills {
        let started = Event::anonymous().unwrap();
        let child = spawn(dict_grower, (d.handle(), started.handle(), id)).unwrap();
        assert!(started.wait_timeout(BOUND), "grower {id} started");
        // Let it run a random while: up to ~20 ms of inserts and growths.
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        child.kill().unwrap();
        join_killed(child);
        let t0 = Instant::now();
        d.insert(0, (0, fnv(0))).unwrap();
        max_op = max_op.max(t0.elapsed());
        let snap = assert_whole(&d);
        let mine = snap.range(id << 32..(id + 1) << 32).count() as u64;
        assert!(mine >= 1, "grower {id}'s first insert");
        assert!(
            snap.contains_key(&(id << 32 | (mine - 1))),
            "grower {id}: {mine} keys, not a prefix"
        );
        assert_only_current_table(&name, &d);
        if snap.len() > 200_000 {
            d.clear().unwrap();
        }
    }
    assert!(
        max_op < RECOVERY_BOUND,
        "an operation after a kill took {max_op:?}"
    );
    eprintln!(
        "dict growers killed: {kills}, take-overs from a dead holder: {}, generations: {}, \
         slowest operation after a kill: {max_op:?}",
        d.recoveries(),
        d.generation() - first_generation
    );
    drop(d);
    assert_no_tables(&name);
}
