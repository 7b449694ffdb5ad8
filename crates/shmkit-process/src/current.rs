//! Python's `current_process()` and `os.cpu_count()`.

use crate::primitive::Ordering;
use crate::state::CURRENT_NAME;

/// The number of CPUs this process may run on (Python's `os.cpu_count()`, respecting
/// affinity like `len(os.sched_getaffinity(0))`).
///
/// ```
/// assert!(shmkit_process::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Name and pid of the running process, like Python's `current_process()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    /// `MainProcess` in the parent, the name given at spawn in a child.
    pub name: String,
    /// The process id.
    pub pid: u32,
}

/// The running process's name and pid.
///
/// ```
/// let me = shmkit_process::current_process();
/// assert_eq!(me.name, "MainProcess");
/// assert_eq!(me.pid, std::process::id());
/// ```
pub fn current_process() -> CurrentProcess {
    CurrentProcess {
        // SYNC: Acquire, paired with the Release store in `child_main`.
        // SAFETY: a non-null pointer here came from `Box::into_raw` and is never freed.
        name: unsafe { CURRENT_NAME.load(Ordering::Acquire).as_ref() }
            .cloned()
            .unwrap_or_else(|| "MainProcess".into()),
        pid: std::process::id(),
    }
}
