//! Children are ordinary processes to `ps`, `top` and `pgrep` (issue 15): they show the
//! program's name, not `exe` (Spawn re-executes /proc/self/exe) nor `shmkit-launcher`
//! (the thread a Fork child is forked from), and say what they are where the kernel's
//! 15 bytes allow.
#![cfg(not(miri))] // real processes: nothing here can run under Miri

use shmkit_process::{Process, StartMethod};

shmkit_process::test_support!();

/// What the child looks like from inside: its process comm, the comm of the thread that
/// runs the function, its `argv[0]`.
fn how_i_look(_: ()) -> (String, String, Option<String>) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap().trim_end().to_owned();
    (
        read("/proc/self/comm"),
        read("/proc/thread-self/comm"),
        std::env::args().next(),
    )
}

#[test]
fn children_show_the_programs_name_not_exe() {
    let parent_comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    let parent_comm = parent_comm.trim_end();
    // A test binary's name (`names-<hash>`) is longer than 15 bytes: no room for the
    // child's name next to it, so a child shows exactly what the parent shows.
    assert_eq!(parent_comm.len(), 15, "{parent_comm:?}");
    for method in [StartMethod::Spawn, StartMethod::Fork] {
        let name = format!("nm-{method:?}");
        let (comm, thread_comm, arg0) = Process::builder()
            .name(&name)
            .start_method(method)
            .spawn(how_i_look, ())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(comm, parent_comm, "{method:?}");
        assert_ne!(comm, "exe");
        assert_eq!(arg0, std::env::args().next(), "{method:?}");
        match method {
            // libtest runs the function on a thread of its own: named after the child.
            StartMethod::Spawn => assert_eq!(thread_comm, name),
            // Forked from the launcher thread, the function runs on the only thread.
            _ => assert_eq!(thread_comm, comm),
        }
    }
}
