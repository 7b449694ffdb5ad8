//! The two long-lived threads of a parent process.
//!
//! - The **launcher** starts every child. `PR_SET_PDEATHSIG` fires when the *thread*
//!   that forked the child exits, not the process; forking from one thread that never
//!   exits makes "the child dies with its parent" mean the parent *process* — not, say,
//!   the test thread that called `spawn` and has since finished.
//! - The **reaper** waits for children whose [`Process`](crate::Process) was dropped
//!   without a join: it polls their pidfds (released by the kernel when the child exits,
//!   never a bare pid) and `waitpid`s each as it exits, so no zombie stays behind.
//!
//! Both are found through a pointer tagged with the pid that created them: a child made
//! by `fork()` inherits the pointer but not the thread, sees another pid, and starts its
//! own launcher and reaper if it spawns in turn (instead of queueing work for a thread
//! that does not exist in it).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, mpsc};

use crate::primitive::{AtomicPtr, Ordering};
use crate::state::{CHILD_FD_ENV, CHILD_NAME_ENV, CHILD_STDOUT_ENV};
use crate::{StartMethod, sys};

/// The function and its encoded argument, for a Fork child: they are in the memory the
/// child inherits, so nothing is sent.
pub(crate) struct Direct {
    /// Address of the monomorphised trampoline.
    pub(crate) tramp: usize,
    /// Address of the user's `fn(A) -> R`.
    pub(crate) func: usize,
    /// The postcard-encoded argument.
    pub(crate) payload: Vec<u8>,
    /// Descriptors of the anonymous segments the argument names: the child inherits
    /// them through fork (same numbers); the parent closes its copies with the job.
    pub(crate) fds: Vec<std::os::fd::OwnedFd>,
}

/// One child to start.
pub(crate) struct Job {
    pub(crate) method: StartMethod,
    /// Command-line arguments of a Spawn child after `argv[0]`: the parent's own, or
    /// the test filter in a test binary.
    pub(crate) args: Vec<OsString>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) name: String,
    pub(crate) die_with_parent: bool,
    /// Spawn from a test binary: libtest's own lines ("running 1 test") go to
    /// /dev/null; the function's output goes to the real stdout, passed alongside.
    pub(crate) quiet_harness: bool,
    pub(crate) direct: Option<Direct>,
}

/// Where the launcher sends the child's pid and the parent's end of its socket.
type Reply = mpsc::Sender<io::Result<(u32, OwnedFd)>>;

/// Hand `job` to the launcher thread and wait for the child's pid and socket.
pub(crate) fn start(job: Job) -> io::Result<(u32, OwnedFd)> {
    let (reply, result) = mpsc::channel();
    launcher()?
        .tx
        .send((job, reply))
        .map_err(|_| io::Error::other("the shmkit launcher thread is gone"))?;
    result
        .recv()
        .map_err(|_| io::Error::other("the shmkit launcher thread is gone"))?
}

struct Launcher {
    owner: u32,
    tx: mpsc::Sender<(Job, Reply)>,
}

struct Reaper {
    owner: u32,
    /// Children handed over since the reaper last looked.
    pending: Arc<Mutex<Vec<(u32, OwnedFd)>>>,
    /// An eventfd that wakes the reaper's poll when `pending` grows.
    wake: OwnedFd,
}

static LAUNCHER: AtomicPtr<Launcher> = AtomicPtr::new(std::ptr::null_mut());
static REAPER: AtomicPtr<Reaper> = AtomicPtr::new(std::ptr::null_mut());

/// The value behind `slot` if this process created it, else a new one made by `make`
/// (installed unless another thread won the race, whose value is then used).
fn per_process<T>(
    slot: &'static AtomicPtr<T>,
    owner: impl Fn(&T) -> u32,
    make: impl FnOnce() -> io::Result<Box<T>>,
) -> io::Result<&'static T> {
    let me = std::process::id();
    // SYNC: Acquire, paired with the AcqRel compare_exchange below that published it.
    let current = slot.load(Ordering::Acquire);
    // SAFETY: a non-null pointer in `slot` came from `Box::into_raw` below and is never
    // freed (it lives as long as the process), so it is valid for `'static`.
    if let Some(value) = unsafe { current.as_ref() }
        && owner(value) == me
    {
        return Ok(value);
    }
    let new = Box::into_raw(make()?);
    match slot.compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `new` was just leaked from a Box and is now published, never freed.
        Ok(_) => Ok(unsafe { &*new }),
        Err(winner) => {
            // Another thread of this process installed one first: use it, drop ours
            // (a launcher's thread then ends, its sender gone; a losing reaper's thread
            // idles — a rare race, and harmless).
            // SAFETY: `new` came from `Box::into_raw` above and was never published.
            drop(unsafe { Box::from_raw(new) });
            // SAFETY: `winner` is non-null (it replaced `current`) and, like every
            // pointer in `slot`, leaked and never freed.
            Ok(unsafe { &*winner })
        }
    }
}

fn launcher() -> io::Result<&'static Launcher> {
    per_process(
        &LAUNCHER,
        |l| l.owner,
        || {
            let (tx, rx) = mpsc::channel::<(Job, Reply)>();
            std::thread::Builder::new()
                .name("shmkit-launcher".into())
                .spawn(move || {
                    for (job, reply) in rx {
                        let _ = reply.send(launch(job));
                    }
                })?;
            Ok(Box::new(Launcher {
                owner: std::process::id(),
                tx,
            }))
        },
    )
}

/// Start one child (on the launcher thread). In a Fork child this never returns.
fn launch(job: Job) -> io::Result<(u32, OwnedFd)> {
    let (ours, theirs) = sys::socketpair()?;
    let parent = std::process::id();
    match job.method {
        StartMethod::Spawn => {
            use std::os::unix::process::CommandExt;
            let child_fd = sys::raw(&theirs);
            // `argv[0]` as the parent got it, so the child's `std::env::args()` and
            // /proc/PID/cmdline (`ps aux`, `pgrep -f`) read like the parent's. Its comm
            // (`ps`, `top`, `pgrep`) is set by the child itself: exec of /proc/self/exe
            // would show `exe` (see `current::show_name`).
            let arg0 = std::env::args_os()
                .next()
                .filter(|a| !a.is_empty())
                .or_else(|| std::env::current_exe().ok().map(Into::into))
                .unwrap_or_else(|| "shmkit-child".into());
            let mut cmd = std::process::Command::new("/proc/self/exe");
            cmd.arg0(arg0)
                .args(&job.args)
                .env(CHILD_FD_ENV, child_fd.to_string())
                .env(CHILD_NAME_ENV, &job.name)
                .envs(job.env.iter().map(|(k, v)| (k, v)));
            let real_stdout = match job.quiet_harness {
                true => Some(sys::dup_stdout()?),
                false => None,
            };
            let stdout_fd = real_stdout.as_ref().map(sys::raw);
            if let Some(fd) = stdout_fd {
                cmd.stdout(std::process::Stdio::null())
                    .env(CHILD_STDOUT_ENV, fd.to_string());
            }
            let die_with_parent = job.die_with_parent;
            // SAFETY: the closure runs between fork and exec and calls only
            // async-signal-safe functions (prctl, getppid, fcntl, _exit). Clearing
            // close-on-exec there means only this child inherits its socket.
            unsafe {
                cmd.pre_exec(move || {
                    if die_with_parent {
                        sys::die_with_parent(parent);
                    }
                    if let Some(fd) = stdout_fd {
                        sys::inherit(fd)?;
                    }
                    sys::inherit(child_fd)
                });
            }
            let child = cmd.spawn()?;
            drop(real_stdout); // the child has its copy
            // We reap with waitpid ourselves; std's `Child` does nothing on drop.
            Ok((child.id(), ours))
        }
        StartMethod::Fork => {
            // SAFETY: in the child, only this launcher thread exists; it goes straight
            // to `child_main`, which never returns (the documented Fork caveat applies
            // to locks the function itself takes).
            match unsafe { sys::fork() }? {
                Some(pid) => Ok((pid, ours)),
                None => {
                    drop(ours);
                    if job.die_with_parent {
                        sys::die_with_parent(parent);
                    }
                    for (k, v) in &job.env {
                        sys::setenv_in_fork_child(k, v);
                    }
                    crate::child::child_main(theirs, job.name, job.direct)
                }
            }
        }
    }
}

/// Reap `pid` in the background once it exits (its `Process` was dropped unjoined).
pub(crate) fn adopt(pid: u32, pidfd: OwnedFd) {
    match reaper() {
        Ok(r) => {
            r.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((pid, pidfd));
            let _ = rustix::io::write(&r.wake, &1u64.to_ne_bytes());
        }
        // No reaper thread could start: reap now if it already exited (best effort).
        Err(_) => {
            let _ = sys::reap(pid, false);
        }
    }
}

fn reaper() -> io::Result<&'static Reaper> {
    per_process(
        &REAPER,
        |r| r.owner,
        || {
            let wake = rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )?;
            let pending = Arc::new(Mutex::new(Vec::new()));
            let (theirs, their_wake) = (pending.clone(), wake.try_clone()?);
            std::thread::Builder::new()
                .name("shmkit-reaper".into())
                .spawn(move || reap_forever(&theirs, &their_wake))?;
            Ok(Box::new(Reaper {
                owner: std::process::id(),
                pending,
                wake,
            }))
        },
    )
}

fn reap_forever(pending: &Mutex<Vec<(u32, OwnedFd)>>, wake: &OwnedFd) {
    let mut watched: Vec<(u32, OwnedFd)> = Vec::new();
    loop {
        watched.extend(pending.lock().unwrap_or_else(|p| p.into_inner()).drain(..));
        // Keep only children still running; `Err` (ECHILD) means someone reaped it.
        watched.retain(|(pid, _)| matches!(sys::reap(*pid, false), Ok(None)));
        let fds: Vec<BorrowedFd<'_>> = std::iter::once(wake.as_fd())
            .chain(watched.iter().map(|(_, fd)| fd.as_fd()))
            .collect();
        let _ = sys::poll_readable(&fds, None);
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(wake, &mut counter);
    }
}
