//! What the fault-injection suites (`crates/*/tests/faults.rs`) share: the bound on every
//! wait, the kill count, a replayable random generator, dying at an exact point, and the
//! check that a killed child is reaped (`join_killed`, with the feature `process`).

use std::time::Duration;

/// The bound on every wait: a bug fails a test after this, it never hangs it.
pub const BOUND: Duration = Duration::from_secs(10);

/// The number of kills of a random test: `SHMKIT_TORTURE`, or `default`.
pub fn torture(default: u64) -> u64 {
    std::env::var("SHMKIT_TORTURE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: the kill points are random, the seed is printed so a
/// failure can be replayed (`SHMKIT_FAULT_SEED`).
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `SHMKIT_FAULT_SEED` or the clock; prints the seed.
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("SHMKIT_FAULT_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("{test}: SHMKIT_FAULT_SEED={seed}");
        Rng(seed)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// SIGKILL this process now: the crash point is exactly here.
pub fn die() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    // The signal is delivered before kill(2) returns; abort is a fallback that also
    // never runs destructors.
    std::process::abort()
}

/// Whether `pid` is still our child (running or a zombie): it must not be after a join.
pub fn still_our_child(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let ppid = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
        .and_then(|p| p.parse::<u32>().ok());
    ppid == Some(std::process::id())
}

/// Join a child that must have died of SIGKILL (killed by us or by itself), and check
/// it is reaped. A panic in the child (a failed check there) fails the test.
#[cfg(feature = "process")]
pub fn join_killed<R: serde::de::DeserializeOwned + std::fmt::Debug>(
    mut p: shmkit_process::Process<R>,
) {
    let pid = p.pid();
    match p.join_timeout(BOUND) {
        Err(shmkit_process::ProcessError::Signaled { number: 9, .. }) => {}
        other => panic!("child {pid}: expected death by SIGKILL, got {other:?}"),
    }
    assert!(!still_our_child(pid), "child {pid} not reaped");
}
