//! The facts docs/dependencies.md states about the requested `shared_memory` and
//! `raw_sync` crates, kept as tests so the claims stay backed. Each shows why shmkit
//! builds its own segment (on rustix + memmap2) and its own robust mutex; the crates
//! remain the baselines in our benches. If a future release fixes one of these, the test
//! fails and the doc must be updated.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{ChildRole, Cleanup, unique};
use raw_sync::Timeout;
use raw_sync::locks::{LockInit, Mutex};
use shmkit_segment::Segment;

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn child_entry() {
    let Some((role, arg)) = common::role() else {
        return;
    };
    match role.as_str() {
        "sm_create_and_hang" => {
            let _shm = shared_memory::ShmemConf::new()
                .size(4096)
                .os_id(&arg)
                .create()
                .unwrap();
            println!("CREATED");
            std::thread::sleep(Duration::from_secs(30));
        }
        "rs_lock_and_hang" => {
            let seg = Segment::open(&arg).unwrap();
            // SAFETY: the parent initialised a raw_sync mutex at the payload start; the
            // segment is large enough for it and stays mapped while we hold the lock.
            let (mutex, _) =
                unsafe { Mutex::from_existing(seg.as_ptr(), seg.as_ptr().add(256)) }.unwrap();
            let _guard = mutex.lock().unwrap();
            println!("HOLDING");
            std::thread::sleep(Duration::from_secs(30));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn shared_memory_creates_0600_and_refuses_a_second_create() {
    let name = unique("sm-mode");
    let _c = Cleanup(name.clone());
    let shm = shared_memory::ShmemConf::new()
        .size(4096)
        .os_id(&name)
        .create()
        .unwrap();
    let mode = std::fs::metadata(format!("/dev/shm/{name}"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        shared_memory::ShmemConf::new()
            .size(4096)
            .os_id(&name)
            .create()
            .is_err()
    );
    drop(shm);
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn shared_memory_open_ignores_the_requested_size() {
    let name = unique("sm-size");
    let _c = Cleanup(name.clone());
    let _shm = shared_memory::ShmemConf::new()
        .size(4096)
        .os_id(&name)
        .create()
        .unwrap();
    let opened = shared_memory::ShmemConf::new()
        .size(1 << 20)
        .os_id(&name)
        .open()
        .expect("open asking for 1 MiB of a 4 KiB segment succeeds");
    assert_eq!(opened.len(), 4096, "and silently maps 4 KiB");
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn shared_memory_killed_creator_blocks_recreate_forever() {
    let name = unique("sm-kill");
    let _c = Cleanup(name.clone());
    let child = ChildRole::start("sm_create_and_hang", &name);
    child.expect_line("CREATED");
    child.kill();
    assert!(
        std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "file left behind"
    );
    assert!(
        shared_memory::ShmemConf::new()
            .size(4096)
            .os_id(&name)
            .create()
            .is_err(),
        "create of the name fails until someone removes the file by hand"
    );
    // shmkit's answer: the header says whose it was, and is_stale() says the creator is gone.
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn raw_sync_mutex_is_not_robust() {
    let name = unique("rs-robust");
    let _c = Cleanup(name.clone());
    let seg = Segment::create(&name, 4096).unwrap();
    // SAFETY: the payload is 4096 bytes, enough for a pthread mutex and the data pointer
    // slot; it stays mapped for the whole test.
    let (mutex, _) = unsafe { Mutex::new(seg.as_ptr(), seg.as_ptr().add(256)) }.unwrap();
    let child = ChildRole::start("rs_lock_and_hang", &name);
    child.expect_line("HOLDING");
    child.kill();
    // A whole-second timeout sidesteps raw_sync's unnormalised-nanoseconds bug.
    let t0 = Instant::now();
    let r = mutex.try_lock(Timeout::Val(Duration::from_secs(1)));
    assert!(r.is_err(), "a dead holder keeps a raw_sync mutex locked");
    let msg = r.err().unwrap().to_string();
    assert!(
        msg.contains("110"),
        "ETIMEDOUT, reported only as a string: {msg}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(900));
}

#[test]
#[cfg_attr(miri, ignore)] // shared memory, files and processes
fn raw_sync_sub_second_timeouts_fail_at_once_with_einval() {
    let mut mem = vec![0u64; 512];
    let base = mem.as_mut_ptr().cast::<u8>();
    // SAFETY: a 4 KiB heap buffer that outlives the mutex, enough for the lock and data slot.
    let (mutex, _) = unsafe { Mutex::new(base, base.add(256)) }.unwrap();
    let _held = mutex.lock().unwrap();
    // raw_sync adds the timeout's nanoseconds to the clock's without carrying into the
    // seconds, so `now.nsec + 999 ms >= 1 s` (true 99.9% of the time) gives an invalid
    // deadline and an immediate EINVAL instead of a wait. Five tries make a miss ~1e-15.
    let einval = (0..5).any(|_| {
        let t0 = Instant::now();
        let r = mutex.try_lock(Timeout::Val(Duration::from_millis(999)));
        let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
        msg.contains(": 22") && t0.elapsed() < Duration::from_millis(100)
    });
    assert!(
        einval,
        "expected an immediate EINVAL from a sub-second timed lock"
    );
}
