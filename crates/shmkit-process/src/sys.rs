//! The operating-system calls of the launcher, in one place so other Unixes can follow:
//! a `SOCK_SEQPACKET` control socket, sealed memfds passed with `SCM_RIGHTS`, fork,
//! `PR_SET_PDEATHSIG`, pidfds and `waitpid`. Linux-specific.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::process::{Pid, PidfdFlags, WaitOptions};

/// Largest message sent inline on the control socket; bigger payloads go in a memfd.
pub(crate) const INLINE_MAX: usize = 64 * 1024;

/// A connected pair of `SOCK_SEQPACKET` sockets, both close-on-exec. Seqpacket keeps
/// message boundaries, carries descriptors, and reads EOF when the other side is gone.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// The most descriptors one message carries (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// Send one message, with descriptors attached (at most [`MAX_FDS`]).
pub(crate) fn send(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors in one message (at most {MAX_FDS})",
                fds.len()
            ),
        ));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    let n = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if n != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short seqpacket send",
        ));
    }
    Ok(())
}

/// Receive one message; `None` at EOF (the other side closed or died).
pub(crate) fn recv(
    sock: BorrowedFd<'_>,
    wait: bool,
) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let flags = if wait {
        RecvFlags::CMSG_CLOEXEC
    } else {
        RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT
    };
    // Learn the message's length first (MSG_PEEK | MSG_TRUNC returns the full length of
    // a seqpacket message), so any message fits; 0 is EOF (we never send empty ones).
    let peek = flags | RecvFlags::PEEK | RecvFlags::TRUNC;
    let len = loop {
        match rustix::net::recv(sock, &mut [0u8; 1][..], peek) {
            Ok((_, len)) => break len,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) if !wait => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    if len == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(sock, &mut [IoSliceMut::new(&mut buf)], &mut control, flags) {
            Ok(m) => break m,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) if !wait => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if msg.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if msg.flags.contains(rustix::net::ReturnFlags::TRUNC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "control message truncated",
        ));
    }
    buf.truncate(msg.bytes);
    Ok(Some((buf, fds)))
}

/// A memfd filled by `fill` (through `write`, never a writable mapping: a Fork child
/// started by another thread meanwhile would inherit that mapping, and `F_SEAL_WRITE`
/// refuses while one exists), checked to hold `len` bytes, then sealed against every
/// change: the receiver may map it and read it as `&[u8]`, because no process can
/// write, shrink or grow it any more.
pub(crate) fn sealed_memfd_with(
    len: usize,
    fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
) -> io::Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(
        "shmkit-process-payload",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    let mut file = std::fs::File::from(fd);
    fill(&mut file)?;
    let written = file.metadata()?.len();
    if written != len as u64 {
        return Err(io::Error::other(format!(
            "encoded {written} bytes, {len} expected (a Serialize impl that is not deterministic?)"
        )));
    }
    let fd = OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )?;
    Ok(fd)
}

/// Map a received payload memfd read-only, after checking it is sealed and as long as
/// the message says.
pub(crate) fn map_sealed(fd: &OwnedFd, len: u64) -> io::Result<memmap2::Mmap> {
    let seals = rustix::fs::fcntl_get_seals(fd)?;
    let needed = SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW;
    if !seals.contains(needed) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "payload memfd is not sealed",
        ));
    }
    let size = rustix::fs::fstat(fd)?.st_size as u64;
    if size != len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("payload memfd holds {size} bytes, the message says {len}"),
        ));
    }
    // SAFETY: the memfd is sealed against writes, shrinking and growing (checked above),
    // so the mapped bytes can never change or disappear while the map lives.
    unsafe { memmap2::MmapOptions::new().populate().map(fd) }
}

/// Wait until one of `fds` is readable (or hung up), at most `timeout` (`None`: forever).
/// Returns the readiness of each.
pub(crate) fn poll_readable(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    loop {
        match rustix::event::poll(&mut pfds, ts.as_ref()) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect())
}

/// A pidfd for our child `pid`.
pub(crate) fn pidfd(pid: u32) -> io::Result<OwnedFd> {
    let p = Pid::from_raw(pid as i32).ok_or_else(|| io::Error::other("pid 0"))?;
    Ok(rustix::process::pidfd_open(p, PidfdFlags::empty())?)
}

/// Whether `e`, from [`pidfd`], means this system refuses pidfds altogether (`ENOSYS`:
/// Linux before 5.3, valgrind; `EPERM`: a seccomp filter), not a passing failure.
pub(crate) fn pidfds_refused(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
}

/// Kill our unreaped child `pid` and reap it (blocking). Only for a child we cannot
/// hold otherwise: unreaped, its pid cannot name another process — unless the program
/// reaps children behind our back (`SIGCHLD` ignored, its own `waitpid(-1)`), the same
/// caveat as any pid-based kill; a `Spawn` child waits for its request, so it is still
/// there.
pub(crate) fn kill_and_reap(pid: u32) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        let _ = reap(pid, true);
    }
}

/// How a reaped child ended (Python's `exitcode`: the code, or minus the signal).
///
/// ```
/// use shmkit_process::{ExitStatus, Process, StartMethod};
///
/// fn quit(code: i32) {
///     std::process::exit(code)
/// }
///
/// let p = Process::builder().start_method(StartMethod::Fork).spawn(quit, 3)?;
/// let t0 = std::time::Instant::now();
/// while p.is_alive() {
///     assert!(t0.elapsed() < std::time::Duration::from_secs(10));
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// }
/// assert_eq!(p.exit_status(), Some(ExitStatus::Exited(3)));
/// assert_eq!(p.exit_status().and_then(ExitStatus::code), Some(3));
/// # Ok::<(), shmkit_process::ProcessError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
}

impl ExitStatus {
    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, if it exited (Python's `exitcode` for a normal exit).
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(c) => Some(c),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal, if one ended it (Python's `exitcode` is its negation).
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(s) => Some(s),
            ExitStatus::Exited(_) => None,
        }
    }
}

/// Reap `pid`: blocking, or `None` at once if it is still running and `block` is false.
pub(crate) fn reap(pid: u32, block: bool) -> io::Result<Option<ExitStatus>> {
    let p = Pid::from_raw(pid as i32).ok_or_else(|| io::Error::other("pid 0"))?;
    let opts = if block {
        WaitOptions::empty()
    } else {
        WaitOptions::NOHANG
    };
    loop {
        match rustix::process::waitpid(Some(p), opts) {
            Ok(Some((_, st))) => {
                return Ok(Some(if let Some(sig) = st.terminating_signal() {
                    ExitStatus::Signaled(sig)
                } else {
                    ExitStatus::Exited(st.exit_status().unwrap_or(-1))
                }));
            }
            Ok(None) => return Ok(None),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

/// In a freshly forked child: die with SIGKILL when the parent dies, and close the race
/// where the parent died before the request took effect.
pub(crate) fn die_with_parent(parent: u32) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a per-process attribute; async-signal-safe.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // SAFETY: getppid is async-signal-safe and cannot fail.
    if unsafe { libc::getppid() } as u32 != parent {
        // SAFETY: _exit is async-signal-safe; the parent is already gone.
        unsafe { libc::_exit(1) };
    }
}

/// Clear close-on-exec on `fd` (in the child, between fork and exec).
pub(crate) fn inherit(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor number we own in this process; async-signal-safe.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set an environment variable in a freshly forked child, through libc directly: std's
/// `set_var` first takes std's environment lock, which another thread of the parent may
/// have held (for a read) at the moment of the fork — it would never be released here.
/// Keys or values with a NUL byte (or a key with `=`) are skipped, as `setenv` would
/// refuse them.
pub(crate) fn setenv_in_fork_child(key: &str, value: &str) {
    let (Ok(k), Ok(v)) = (std::ffi::CString::new(key), std::ffi::CString::new(value)) else {
        return;
    };
    if key.is_empty() || key.contains('=') {
        return;
    }
    // SAFETY: the forked child runs a single thread, so nothing reads the environment
    // concurrently; both strings are NUL-terminated and outlive the call.
    unsafe { libc::setenv(k.as_ptr(), v.as_ptr(), 1) };
}

/// A close-on-exec duplicate of this process's stdout (fd 1).
pub(crate) fn dup_stdout() -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on fd 1 only creates a new descriptor.
    let fd = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created by the call above and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make `fd` this process's stdout (fd 1); `fd` itself is closed when dropped.
pub(crate) fn restore_stdout(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: dup2 atomically points descriptor 1 at `fd`'s file; `std`'s stdout handle
    // writes to the number 1, so it follows.
    if unsafe { libc::dup2(fd.as_raw_fd(), libc::STDOUT_FILENO) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set close-on-exec again on an inherited descriptor, so grandchildren don't get it.
pub(crate) fn set_cloexec(fd: RawFd) {
    // SAFETY: F_SETFD on a descriptor this process owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

/// Take ownership of an inherited descriptor number, after checking it is a socket.
pub(crate) fn adopt_socket(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fstat on a raw descriptor number only reads its metadata.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer.
    if unsafe { libc::fstat(fd, &mut st) } == -1 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "inherited descriptor is not a socket",
        ));
    }
    // SAFETY: the parent passed this descriptor to us for our exclusive use (checked to be
    // an open socket above); nothing else in this process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fork()`.
///
/// # Safety
/// In the child, only the calling thread exists: it must avoid locks other threads
/// might have held (the documented caveat of the `Fork` start method).
pub(crate) unsafe fn fork() -> io::Result<Option<u32>> {
    // SAFETY: the caller accepts the post-fork restrictions (see above).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid as u32)),
    }
}

pub(crate) fn raw(fd: &impl AsFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}
