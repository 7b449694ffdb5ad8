//! One way to hand a primitive to a child: pass the primitive itself (a clone, to keep
//! one here), as Python passes `Process(target=f, args=(lock, value))`. Real processes;
//! every wait bounded.
#![cfg(not(miri))] // real processes

use std::time::Duration;

use shmkit_process::{Process, StartMethod, spawn};
use shmkit_sync::{Array, Barrier, Condvar, Event, Mutex, RLock, Semaphore, Value};

shmkit_process::test_support!();

const LONG: Duration = Duration::from_secs(20);

type Everything = (
    Mutex<u64>,
    Value<u32>,
    Array<u16>,
    RLock,
    Event,
    Semaphore,
    Barrier,
    Condvar,
);

/// Uses every primitive it was given; what it changes, the parent checks.
fn use_them_all(args: Everything) -> u32 {
    let (mutex, value, array, rlock, event, semaphore, barrier, condvar) = args;
    *mutex.lock().unwrap() += 41;
    value.set(value.get().unwrap() * 2).unwrap();
    array.set(2, 7).unwrap();
    {
        let _outer = rlock.acquire_timeout(LONG).unwrap();
        let _inner = rlock.acquire_timeout(LONG).unwrap(); // re-entrant here too
    }
    semaphore.release();
    condvar.notify_all();
    barrier.wait_timeout(LONG).unwrap();
    event.set();
    value.get().unwrap()
}

#[test]
fn every_primitive_passes_to_a_child_as_itself_and_stays_usable_here() {
    let mutex = Mutex::anonymous(1u64).unwrap();
    let value = Value::anonymous(21u32).unwrap();
    let array = Array::<u16>::anonymous_zeroed(4).unwrap();
    let rlock = RLock::anonymous().unwrap();
    let event = Event::anonymous().unwrap();
    let semaphore = Semaphore::anonymous(0).unwrap();
    let barrier = Barrier::anonymous(2).unwrap();
    let condvar = Condvar::anonymous().unwrap();
    let mut child = spawn(
        use_them_all,
        (
            mutex.clone(),
            value.clone(),
            array.clone(),
            rlock.clone(),
            event.clone(),
            semaphore.clone(),
            barrier.clone(),
            condvar.clone(),
        ),
    )
    .unwrap();
    barrier.wait_timeout(LONG).unwrap(); // meets the child's wait
    assert!(event.wait_timeout(LONG), "the child's set reached us");
    assert_eq!(child.join_timeout(LONG).unwrap(), 42);
    assert_eq!(*mutex.lock().unwrap(), 42);
    assert_eq!(value.get().unwrap(), 42);
    assert_eq!(array.to_vec().unwrap(), [0, 0, 7, 0]);
    assert!(semaphore.try_acquire(), "the child's release reached us");
    drop(rlock.acquire_timeout(LONG).unwrap()); // the child left it free
}

#[test]
fn a_clone_is_the_same_primitive_and_serializing_leaves_the_original_alone() {
    let value = Value::anonymous(5u64).unwrap();
    let bytes = postcard::to_allocvec(&value).unwrap();
    value.set(6).unwrap(); // still ours after serializing
    let elsewhere: Value<u64> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(elsewhere.get().unwrap(), 6);
    let twin = value.try_clone().unwrap();
    twin.set(7).unwrap();
    drop(twin);
    assert_eq!(value.get().unwrap(), 7);
}

fn double_it(v: Value<u64>) -> u64 {
    v.set(v.get().unwrap() * 2).unwrap();
    v.get().unwrap()
}

/// An anonymous primitive passed and dropped at once: its descriptor travels with the
/// arguments, so the child finds it though no handle is left here (Python's
/// `Process(target=f, args=(Value('i', 21),))`).
#[test]
fn an_anonymous_primitive_reaches_the_child_though_the_parent_dropped_it() {
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let mut child = Process::builder()
            .start_method(method)
            .spawn(double_it, Value::anonymous(21u64).unwrap())
            .unwrap();
        assert_eq!(child.join_timeout(LONG).unwrap(), 42, "{method:?}");
    }
}
