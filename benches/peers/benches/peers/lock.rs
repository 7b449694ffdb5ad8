//! `lock_uncontended/*/lock_unlock` and `lock_contended/*/lock_unlock`: lock, add one
//! to a shared `u64`, unlock.
//!
//! - `shmkit`: `shmkit_sync::Mutex<T>` (robust, futex-based) in an anonymous segment.
//! - `raw_sync`: `raw_sync::locks::Mutex` (a process-shared pthread mutex) with its data
//!   in a `shared_memory` segment, as raw_sync's README sets it up.
//! - `pthread_robust`: a glibc `pthread_mutex_t` made `PTHREAD_PROCESS_SHARED` and
//!   `PTHREAD_MUTEX_ROBUST` in a `shared_memory` segment — what a C user would write.
//! - `parking_lot`: `parking_lot::Mutex<u64>`, in-process only, as the reference.
//!
//! Contended: a child process (a thread, for `parking_lot`) runs the same lock / add /
//! unlock loop flat out while this process measures its own lock / add / unlock. The
//! figure is the time per operation of one side under steady two-core contention.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use bytemuck::{Pod, Zeroable};
use criterion::{BenchmarkId, Criterion};
use raw_sync::locks::{LockImpl, LockInit, Mutex as RawMutex};
use shared_memory::{Shmem, ShmemConf};
use shmkit_sync::{Handle, Mutex};

use crate::LONG;

/// Layout of the raw segments: lock at 0, counter at DATA_AT, stop word at STOP_AT.
const DATA_AT: usize = 512;
const STOP_AT: usize = 1024;
const SEGMENT: usize = 4096;

/// How often a hammering loop looks at the clock (its bound is [`LONG`]).
const CHECK_EVERY: u64 = 1 << 12;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Counter {
    count: u64,
    stop: u64,
}

fn create_segment(tag: &str) -> (Shmem, String) {
    let os_id = crate::unique_name(tag);
    // The creator owns it: dropping the Shmem unmaps and unlinks it.
    let shm = ShmemConf::new()
        .size(SEGMENT)
        .os_id(&os_id)
        .create()
        .expect("create segment");
    (shm, os_id)
}

fn open_segment(os_id: &str) -> Shmem {
    ShmemConf::new().os_id(os_id).open().expect("open segment")
}

fn stop_word(shm: &Shmem) -> &AtomicU32 {
    assert!(shm.len() >= SEGMENT);
    // SAFETY: STOP_AT + 4 <= SEGMENT <= the mapping's length (asserted), 4-aligned in a
    // page-aligned mapping that lives as long as `shm`; only ever accessed atomically.
    unsafe { &*shm.as_ptr().add(STOP_AT).cast::<AtomicU32>() }
}

// --- raw_sync --------------------------------------------------------------------------

fn raw_mutex(shm: &Shmem, create: bool) -> Box<dyn LockImpl> {
    assert!(shm.len() >= SEGMENT);
    let base = shm.as_ptr();
    // SAFETY: the mutex (a pthread_mutex_t, 40 bytes) sits at the start of a SEGMENT-byte
    // mapping and its data at DATA_AT, both inside it (asserted); the creator initialises
    // it before any child is started, children only open it.
    let made = unsafe {
        let data = base.add(DATA_AT);
        if create {
            RawMutex::new(base, data)
        } else {
            RawMutex::from_existing(base, data)
        }
    };
    made.expect("raw_sync mutex").0
}

fn raw_add_one(m: &dyn LockImpl) {
    let guard = m.lock().expect("raw_sync lock");
    let data = (*guard).cast::<u64>();
    // SAFETY: `data` is DATA_AT in the mapping (8-aligned, 8 bytes inside it), and the
    // lock we hold serialises every access to it.
    unsafe { *data += 1 };
}

fn raw_sync_hammer(os_id: String) {
    let shm = open_segment(&os_id);
    let m = raw_mutex(&shm, false);
    hammer(stop_word(&shm), || raw_add_one(&*m));
}

// --- glibc robust pthread mutex --------------------------------------------------------

struct Pthread {
    m: *mut libc::pthread_mutex_t,
    data: *mut u64,
}

impl Pthread {
    fn at(shm: &Shmem, create: bool) -> Pthread {
        assert!(shm.len() >= SEGMENT);
        assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= DATA_AT);
        let m = shm.as_ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: DATA_AT + 8 <= SEGMENT <= the mapping's length (asserted), 8-aligned.
        let data = unsafe { shm.as_ptr().add(DATA_AT).cast::<u64>() };
        if create {
            let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
            // SAFETY: `attr` is initialised by pthread_mutexattr_init before any other
            // use; `m` points at a zeroed, suitably aligned region of a mapping that
            // outlives every user, and no other process uses it before it is
            // initialised (children start afterwards).
            unsafe {
                assert_eq!(libc::pthread_mutexattr_init(attr.as_mut_ptr()), 0);
                assert_eq!(
                    libc::pthread_mutexattr_setpshared(
                        attr.as_mut_ptr(),
                        libc::PTHREAD_PROCESS_SHARED
                    ),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(
                        attr.as_mut_ptr(),
                        libc::PTHREAD_MUTEX_ROBUST
                    ),
                    0
                );
                assert_eq!(libc::pthread_mutex_init(m, attr.as_ptr()), 0);
                libc::pthread_mutexattr_destroy(attr.as_mut_ptr());
            }
        }
        Pthread { m, data }
    }

    fn add_one(&self) {
        // SAFETY: `m` is an initialised process-shared robust mutex in a live mapping;
        // `data` is only touched while it is held.
        unsafe {
            match libc::pthread_mutex_lock(self.m) {
                0 => {}
                libc::EOWNERDEAD => {
                    libc::pthread_mutex_consistent(self.m);
                }
                e => panic!("pthread_mutex_lock: {e}"),
            }
            *self.data += 1;
            libc::pthread_mutex_unlock(self.m);
        }
    }
}

fn pthread_hammer(os_id: String) {
    let shm = open_segment(&os_id);
    let p = Pthread::at(&shm, false);
    hammer(stop_word(&shm), || p.add_one());
}

// --- shmkit ----------------------------------------------------------------------------

fn shmkit_add_one(m: &Mutex<Counter>) -> bool {
    let mut g = m.lock().expect("lock");
    g.count += 1;
    g.stop != 0
}

fn shmkit_hammer(h: Handle<Mutex<Counter>>) {
    let m = h.open().expect("open");
    let t0 = Instant::now();
    let mut n = 0u64;
    while !shmkit_add_one(&m) {
        n += 1;
        if n.is_multiple_of(CHECK_EVERY) && t0.elapsed() > LONG {
            return;
        }
    }
}

/// Run `op` flat out until `stop` is set (or [`LONG`] has passed).
fn hammer(stop: &AtomicU32, mut op: impl FnMut()) {
    let t0 = Instant::now();
    let mut n = 0u64;
    while stop.load(Ordering::Relaxed) == 0 {
        op();
        n += 1;
        if n.is_multiple_of(CHECK_EVERY) && t0.elapsed() > LONG {
            return;
        }
    }
}

pub fn lock_uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_uncontended");
    let id = |t| BenchmarkId::new(t, "lock_unlock");

    let m = Mutex::anonymous(Counter::zeroed()).expect("shmkit mutex");
    g.bench_function(id("shmkit"), |b| b.iter(|| shmkit_add_one(&m)));

    let (shm, _) = create_segment("rawlock");
    let rm = raw_mutex(&shm, true);
    g.bench_function(id("raw_sync"), |b| b.iter(|| raw_add_one(&*rm)));
    drop(rm);
    drop(shm);

    let (shm, _) = create_segment("pthread");
    let p = Pthread::at(&shm, true);
    g.bench_function(id("pthread_robust"), |b| b.iter(|| p.add_one()));
    drop(shm);

    let pl = parking_lot::Mutex::new(0u64);
    g.bench_function(id("parking_lot"), |b| {
        b.iter(|| {
            *pl.lock() += 1;
        })
    });
    black_box(*pl.lock());
    g.finish();
}

pub fn lock_contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_contended");
    let id = |t| BenchmarkId::new(t, "lock_unlock");

    {
        let m = Mutex::anonymous(Counter::zeroed()).expect("shmkit mutex");
        let mut child = shmkit_process::spawn(shmkit_hammer, m.handle()).expect("spawn");
        g.bench_function(id("shmkit"), |b| b.iter(|| shmkit_add_one(&m)));
        m.lock().expect("lock").stop = 1;
        child.join_timeout(LONG).expect("shmkit hammer stops");
    }
    {
        let (shm, os_id) = create_segment("rawlock");
        let rm = raw_mutex(&shm, true);
        let mut child = shmkit_process::spawn(raw_sync_hammer, os_id).expect("spawn");
        g.bench_function(id("raw_sync"), |b| b.iter(|| raw_add_one(&*rm)));
        stop_word(&shm).store(1, Ordering::Relaxed);
        child.join_timeout(LONG).expect("raw_sync hammer stops");
    }
    {
        let (shm, os_id) = create_segment("pthread");
        let p = Pthread::at(&shm, true);
        let mut child = shmkit_process::spawn(pthread_hammer, os_id).expect("spawn");
        g.bench_function(id("pthread_robust"), |b| b.iter(|| p.add_one()));
        stop_word(&shm).store(1, Ordering::Relaxed);
        child.join_timeout(LONG).expect("pthread hammer stops");
    }
    {
        let pl = Arc::new(parking_lot::Mutex::new(0u64));
        let stop = Arc::new(AtomicU32::new(0));
        let thread = {
            let (pl, stop) = (Arc::clone(&pl), Arc::clone(&stop));
            std::thread::spawn(move || hammer(&stop, || *pl.lock() += 1))
        };
        g.bench_function(id("parking_lot"), |b| {
            b.iter(|| {
                *pl.lock() += 1;
            })
        });
        stop.store(1, Ordering::Relaxed);
        thread.join().expect("parking_lot hammer stops");
    }
    g.finish();
}
