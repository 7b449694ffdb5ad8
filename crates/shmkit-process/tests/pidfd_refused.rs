//! A kernel that refuses `pidfd_open` (Linux before 5.3, a seccomp filter, valgrind):
//! `spawn` fails with an error that says why, and leaves no child behind. The refusal
//! is a real seccomp filter on the spawning thread. Its own test binary: the check that
//! no child is left is "this process has no children at all".
#![cfg(all(not(miri), target_os = "linux", target_arch = "x86_64"))]

shmkit_process::test_support!();

/// Install, on the calling thread (no `SECCOMP_FILTER_FLAG_TSYNC`; threads it starts
/// inherit it), a filter that makes `pidfd_open` fail with `ENOSYS` and allows every
/// other system call. `Err` if this kernel or sandbox does not let us.
fn refuse_pidfd_open_on_this_thread() -> std::io::Result<()> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    // BPF opcodes: load a word of `seccomp_data` (nr at 0, arch at 4), jump if equal,
    // return.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let program = [
        op(LD_W_ABS, 0, 0, 4),
        op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        op(RET_K, 0, 0, SECCOMP_RET_ALLOW),
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 1, libc::SYS_pidfd_open as u32),
        op(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `prog` points at `program`, a valid BPF program of `prog.len`
    // instructions, both alive for the call (the kernel copies the filter).
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn double(x: u32) -> u32 {
    x * 2
}

#[test]
fn spawn_without_pidfd_open_fails_clearly_and_leaves_no_child() {
    // A first child, joined, from this (unfiltered) thread: it starts shmkit's launcher
    // and reaper threads here, so that they do not inherit the filter below.
    assert_eq!(shmkit_process::spawn(double, 1).unwrap().join().unwrap(), 2);
    // A thread of its own for the filter: it ends with the thread.
    let refused = std::thread::spawn(|| {
        refuse_pidfd_open_on_this_thread()?;
        Ok::<_, std::io::Error>(shmkit_process::spawn(double, 21).map(|_| ()))
    })
    .join()
    .expect("the spawning thread");
    let err = match refused {
        Ok(spawned) => spawned.expect_err("spawn cannot hold its child without a pidfd"),
        Err(e) => {
            eprintln!("skipped: this kernel or sandbox refuses a seccomp filter ({e})");
            return;
        }
    };
    let msg = err.to_string();
    assert!(
        msg.contains("pidfd_open") && msg.contains("Linux 5.3"),
        "the error says what is missing: {msg}"
    );
    assert!(
        matches!(&err, shmkit_process::ProcessError::Io { source, .. }
            if source.raw_os_error() == Some(libc::ENOSYS)),
        "the OS error is kept: {err:?}"
    );
    // No child of this process, running or zombie: waitpid(-1, WNOHANG) finds none.
    let left = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG);
    assert_eq!(
        left.map(|found| found.map(|(pid, _)| pid.as_raw_nonzero())),
        Err(rustix::io::Errno::CHILD),
        "the child started before the pidfd was refused was not reaped"
    );
}
