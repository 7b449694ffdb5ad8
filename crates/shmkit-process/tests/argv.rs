//! A Spawn child sees the parent's command line (issue 15; Python's spawn carries
//! `sys.argv` over), so a program that branches on its arguments takes the same path in
//! the child as in the parent.
//!
//! `harness = false`: like a program, this file has a `main` that calls `init()` first.
//! Run by `cargo test` (with arguments cargo chooses), it runs itself again as a program
//! with arguments of its own, and checks how that ended.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Removed on drop, also when the test fails.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MARK: &str = "--shmkit-argv-test";

/// The program's arguments, as the child sees them.
fn my_args(_: ()) -> Vec<String> {
    std::env::args().collect()
}

/// What the program does after `init()` when it has `MARK`: the parent side.
fn as_a_program(args: &[String]) {
    assert_eq!(args[1], MARK);
    // A program that branches on its arguments: only with "--mode=spawn" does it spawn.
    assert!(args.iter().any(|a| a == "--mode=spawn"), "{args:?}");
    for method in [
        shmkit_process::StartMethod::Spawn,
        shmkit_process::StartMethod::Fork,
    ] {
        let seen = shmkit_process::Process::builder()
            .start_method(method)
            .spawn(my_args, ())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(seen, args, "{method:?}: the child's std::env::args()");
    }
    // The child's /proc/PID/cmdline (`ps aux`, `pgrep -f`) is the parent's too.
    let child = shmkit_process::spawn(|_: ()| std::fs::read("/proc/self/cmdline").unwrap(), ())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(child, std::fs::read("/proc/self/cmdline").unwrap());
    // Started through a symlink named `demo`, the parent shows as `demo`; so do its
    // children, with their own name where it fits in the kernel's 15 bytes.
    let comm = |p: &str| std::fs::read_to_string(p).unwrap().trim_end().to_owned();
    assert_eq!(comm("/proc/self/comm"), "demo");
    for (name, shown) in [("Process-7", "demo:Process-7"), ("PoolWorker-2", "demo")] {
        for method in [
            shmkit_process::StartMethod::Spawn,
            shmkit_process::StartMethod::Fork,
        ] {
            let seen = shmkit_process::Process::builder()
                .name(name)
                .start_method(method)
                .spawn(
                    |_: ()| std::fs::read_to_string("/proc/self/comm").unwrap(),
                    (),
                )
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(seen.trim_end(), shown, "{method:?}");
        }
    }
    println!("ARGV OK");
}

fn main() {
    shmkit_process::init();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(MARK) {
        return as_a_program(&args);
    }
    // Run as `demo` (a symlink to this binary), a name short enough for the children's
    // names to show next to it.
    let dir = TempDir(std::env::temp_dir().join(format!("shmkit-argv-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let demo = dir.0.join("demo");
    std::os::unix::fs::symlink(std::env::current_exe().unwrap(), &demo).unwrap();
    let mut program = Command::new(&demo)
        .args([MARK, "--mode=spawn", "two words", "ünïcode", ""])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while program.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = program.kill();
            let _ = program.wait();
            panic!("the program did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = program.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ARGV OK"),
        "{}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("test a_spawn_child_sees_the_parents_argv ... ok");
}
