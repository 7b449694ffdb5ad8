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

/// Longest name the kernel keeps for a process or thread (`TASK_COMM_LEN` - 1), in bytes.
pub(crate) const COMM_LEN: usize = 15;

/// What `ps`, `top` and `pgrep` show for a child (its `comm`): the program's name, and
/// the child's own name after a colon when both fit the kernel's 15 bytes —
/// `demo:Process-3`, `ab:PoolWorker-2`. When they do not, the program's name alone (cut
/// at 15 bytes, as the kernel cuts the parent's), never a cut child name, whose number
/// would then be wrong (`Process-12` cut to `Process-1`). The program's name comes first
/// so that `pgrep demo` finds the children as well as the parent. (`PoolWorker-N` fits
/// only next to a program name of up to 2 bytes; `current_process()` and every error
/// carry the whole name.)
pub(crate) fn comm_for(program: &str, name: &str) -> String {
    if !program.is_empty() && program.len() + 1 + name.len() <= COMM_LEN {
        return format!("{program}:{name}");
    }
    cut(program, COMM_LEN).to_owned()
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The program's name as a shell user knows it: the last component of `argv[0]` (what
/// the kernel names the parent after), or of the executable's path if `argv[0]` is empty.
fn program_name() -> String {
    let base = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    std::env::args_os()
        .next()
        .map(|a| base(std::path::Path::new(&a)))
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::current_exe().ok().map(|p| base(&p)))
        .unwrap_or_default()
}

/// Show this child as `<program>:<name>` in `ps`, `top` and `pgrep` (see [`comm_for`]);
/// if the function runs on a thread other than the main one (a test binary's child), that
/// thread is named `name` too, for `top -H` and `ps -L`. Best effort: a name is only a
/// label, so a failed write changes nothing else.
///
/// Called in the child only. A Spawn child would otherwise show as `exe` (the kernel
/// names a process after the file it executes, here `/proc/self/exe`); a Fork child as
/// `shmkit-launcher`, the thread it was forked from.
pub(crate) fn show_name(name: &str) {
    // /proc/self is the thread-group leader, whichever thread writes: its comm is the
    // process's name.
    let _ = std::fs::write("/proc/self/comm", comm_for(&program_name(), name));
    if rustix::thread::gettid() != rustix::process::getpid() {
        let _ = std::fs::write("/proc/thread-self/comm", cut(name, COMM_LEN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_name_is_shown_whole_or_not_at_all() {
        assert_eq!(comm_for("demo", "Process-3"), "demo:Process-3");
        assert_eq!(comm_for("ab", "PoolWorker-2"), "ab:PoolWorker-2");
        assert_eq!(comm_for("app", "PoolWorker-2"), "app");
        assert_eq!(comm_for("pipeline", "PoolWorker-2"), "pipeline");
        assert_eq!(comm_for("apps", "Process-123"), "apps");
        assert_eq!(comm_for("a-very-long-program", "P"), "a-very-long-pro");
        assert_eq!(comm_for("", "Process-1"), "");
        // 15 bytes with the 2-byte 'é': kept whole; 16 bytes: cut before the 'é'.
        assert_eq!(comm_for("programmé-long", "x"), "programmé-long");
        assert_eq!(comm_for("programme-longé", "x"), "programme-long");
        let long = "x".repeat(40);
        for (program, name) in [("demo", "Process-3"), (long.as_str(), "y")] {
            assert!(comm_for(program, name).len() <= COMM_LEN);
        }
    }
}
