//! Where the VM's two vCPUs sit right now: a cache line bounced between two threads
//! pinned to CPU 0 and CPU 1. On a KVM guest the vCPUs move between physical cores that
//! share a cache ("near": ~70 ns round trip on 2026-12-03's AMD EPYC) and cores that do
//! not ("far": ~200 ns), and every cross-core figure moves with them; a bench prints
//! this probe next to its figures so each can be tagged near or far.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Round trips above this are "far" (between the two regimes measured on both kinds).
pub const FAR_ABOVE: Duration = Duration::from_nanos(120);

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it; the
    // call only reads the set for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The median cache-line round trip between CPU 0 and CPU 1 over a few short runs.
pub fn cacheline_round_trip() -> Duration {
    const TRIPS: u64 = 20_000;
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let word = Arc::new(AtomicU64::new(0));
            let echo = {
                let word = Arc::clone(&word);
                std::thread::spawn(move || {
                    pin(1);
                    for i in 0..TRIPS {
                        while word.load(Ordering::Acquire) != 2 * i + 1 {
                            std::hint::spin_loop();
                        }
                        word.store(2 * i + 2, Ordering::Release);
                    }
                })
            };
            pin(0);
            let t0 = Instant::now();
            for i in 0..TRIPS {
                word.store(2 * i + 1, Ordering::Release);
                while word.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
            let per = t0.elapsed() / TRIPS as u32;
            echo.join().expect("probe echo");
            per
        })
        .collect();
    // Unpin the bench thread again.
    // SAFETY: as in `pin`, with every CPU of a full set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    runs.sort();
    runs[runs.len() / 2]
}

/// Print the placement, tagged, to stderr (criterion's output stays on stdout): call
/// before and after a group of figures.
pub fn note(when: &str) {
    let rtt = cacheline_round_trip();
    let tag = if rtt > FAR_ABOVE { "far" } else { "near" };
    eprintln!(
        "placement {when}: {tag} (cache-line round trip CPU0<->CPU1 {} ns)",
        rtt.as_nanos()
    );
}
