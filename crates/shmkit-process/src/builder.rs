//! Starting a child: [`StartMethod`], [`Builder`](crate::Builder) and [`spawn`](crate::spawn).

use std::ffi::OsString;
use std::os::fd::AsFd;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::io_err;
use crate::function::{Trampoline, offset_of_fn, trampoline};
use crate::panic::install_panic_hook;
use crate::primitive::Ordering;
use crate::state::{INITIALIZED, NEXT_ID, TEST_ENTRY};
use crate::test_support::test_entry_name;
use crate::wire::{self, Message};
use crate::{Process, ProcessError, launcher, sys};

/// How a child process starts, as in Python's `multiprocessing.set_start_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// Re-execute the current binary (`/proc/self/exe`) with the parent's command-line
    /// arguments, as Python's spawn carries `sys.argv` over; it must call
    /// [`init`](crate::init) first thing in `main` (or contain
    /// [`test_support!()`](crate::test_support)). The child starts clean: safe whatever
    /// threads and locks the parent has. The default.
    #[default]
    Spawn,
    /// `fork()` the parent (from shmkit's launcher thread). Much faster, needs no
    /// `init()`, but the child is a copy of a multi-threaded process with only one
    /// thread: a lock (including stdout's or a `Mutex` of your own) held by another
    /// thread at the moment of the fork stays locked forever in the child. Use it when
    /// the parent's other threads hold no locks the function needs — the same caveat
    /// as Python's `fork`.
    Fork,
}

/// Start `f(args)` in a child process with the default [`Builder`](crate::Builder) (start method
/// [`Spawn`](StartMethod::Spawn)). Like `Process(target=f, args=(args,)).start()`.
///
/// `f` is a plain function or a non-capturing closure; `A` and `R` are serde types.
/// Fails with [`ProcessError::NotInitialized`] if this binary cannot act as a child
/// (no [`init`](crate::init) in `main`, no [`test_support!()`](crate::test_support) in a test binary).
///
/// ```no_run
/// fn greet(name: String) -> String {
///     format!("hello, {name}")
/// }
///
/// fn main() -> Result<(), shmkit_process::ProcessError> {
///     shmkit_process::init();
///     let p = shmkit_process::spawn(greet, "bob".to_string())?;
///     assert_eq!(p.join()?, "hello, bob");
///     // A non-capturing closure coerces to `fn(A) -> R` too:
///     let p = shmkit_process::spawn(|(a, b): (i32, i32)| a + b, (2, 3))?;
///     assert_eq!(p.join()?, 5);
///     Ok(())
/// }
/// ```
pub fn spawn<A, R>(f: fn(A) -> R, args: A) -> Result<Process<R>, ProcessError>
where
    A: Serialize + DeserializeOwned,
    R: Serialize + DeserializeOwned,
{
    Process::builder().spawn(f, args)
}

/// Options for starting a process, from [`Process::builder`]: name, start method,
/// environment, and whether the child dies with its parent.
///
/// ```
/// use shmkit_process::{Process, StartMethod};
///
/// fn report(key: String) -> (String, Option<String>) {
///     (shmkit_process::current_process().name, std::env::var(key).ok())
/// }
///
/// let p = Process::builder()
///     .name("worker-1")
///     .start_method(StartMethod::Fork)
///     .env("MODE", "fast")
///     .daemon(true) // the default: killed if this process dies
///     .spawn(report, "MODE".to_string())?;
/// assert_eq!(p.join()?, ("worker-1".to_string(), Some("fast".to_string())));
/// # Ok::<(), shmkit_process::ProcessError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    method: StartMethod,
    env: Vec<(String, String)>,
    outlive_parent: bool,
}

impl Builder {
    /// The process name (default `Process-N`), shown in errors, by
    /// [`current_process`](crate::current_process) in the child, and in `ps`/`top` next
    /// to the program's name where the kernel's 15 bytes allow (`demo:Process-3`;
    /// otherwise the program's name alone). A pool names its workers `PoolWorker-N`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The start method (default [`StartMethod::Spawn`](crate::StartMethod::Spawn)).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = method;
        self
    }

    /// Set an environment variable in the child.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Keep the child running if the parent dies (default `false`: the child receives
    /// SIGKILL when its parent dies, so no orphan lingers). Python's non-daemon children
    /// are joined at exit instead; a Rust program joins explicitly.
    pub fn outlive_parent(mut self, yes: bool) -> Self {
        self.outlive_parent = yes;
        self
    }

    /// Python's `daemon` flag, read as "tied to the parent": `daemon(true)` (the
    /// default) kills the child with SIGKILL when the parent process dies
    /// (`PR_SET_PDEATHSIG`); `daemon(false)` lets it run on, like
    /// [`outlive_parent(true)`](Self::outlive_parent). (Python's non-daemon children are
    /// joined at interpreter exit; Rust has no such hook, so there they would be killed
    /// or orphaned — here you choose which.)
    pub fn daemon(self, daemon: bool) -> Self {
        self.outlive_parent(!daemon)
    }

    /// Start `f(args)` in a child.
    pub fn spawn<A, R>(self, f: fn(A) -> R, args: A) -> Result<Process<R>, ProcessError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        // A Spawn child's command line: the parent's own, as Python's spawn carries
        // `sys.argv` over (the child role travels in the environment, not in argv) —
        // except in a test binary, where it is libtest's filter for the child-entry test.
        let exec_args = match (self.method, TEST_ENTRY.get()) {
            (StartMethod::Fork, _) => Vec::new(),
            (StartMethod::Spawn, Some(module_path)) => [
                test_entry_name(module_path).as_str(),
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ]
            .map(OsString::from)
            .to_vec(),
            (StartMethod::Spawn, None) if INITIALIZED.load(Ordering::Acquire) => {
                std::env::args_os().skip(1).collect()
            }
            (StartMethod::Spawn, None) => return Err(ProcessError::NotInitialized),
        };
        // Handles serialized below reserve a place for the child; `handed_to` ties them
        // to it once it is started (shmkit_segment::transit).
        shmkit_segment::transit::begin_handoff();
        // Encode before anything starts, so a value that cannot be encoded starts nothing.
        // Spawn: inline bytes or a sealed memfd to send. Fork: bytes the child inherits.
        let encode_error = |reason: String| ProcessError::Encode {
            type_name: std::any::type_name::<A>(),
            // A shmkit object that refused to travel says why (postcard drops it).
            reason: match shmkit_segment::transit::take_refusal() {
                Some(why) => format!("{why} ({reason})"),
                None => reason,
            },
        };
        let (to_send, in_memory) = match self.method {
            StartMethod::Spawn => (Some(wire::encode(&args).map_err(encode_error)?), None),
            StartMethod::Fork => {
                let (bytes, fds) =
                    shmkit_segment::collect_descriptors(|| postcard::to_allocvec(&args));
                let bytes = bytes.map_err(|e| encode_error(e.to_string()))?;
                (None, Some((bytes, fds)))
            }
        };
        drop(args);
        let name = self
            .name
            .unwrap_or_else(|| format!("Process-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        let tramp = trampoline::<A, R> as Trampoline as usize;
        let func = f as usize;
        if self.method == StartMethod::Fork {
            install_panic_hook(); // inherited by the child: it must not install it itself
        }
        let direct = in_memory.map(|(payload, fds)| launcher::Direct {
            tramp,
            func,
            payload,
            fds,
        });
        let (pid, sock) = launcher::start(launcher::Job {
            method: self.method,
            args: exec_args,
            env: self.env,
            name: name.clone(),
            die_with_parent: !self.outlive_parent,
            quiet_harness: self.method == StartMethod::Spawn && TEST_ENTRY.get().is_some(),
            direct,
        })
        .inspect_err(|_| shmkit_segment::transit::handed_to(0)) // nobody will receive them
        .map_err(io_err("spawn"))?;
        shmkit_segment::transit::handed_to(pid);
        let pidfd = match sys::pidfd(pid) {
            Ok(pidfd) => pidfd,
            Err(e) => {
                // Without a pidfd the child can be neither joined nor reaped later: stop
                // it now, while it is ours and unreaped, so no zombie stays behind.
                sys::kill_and_reap(pid);
                let op = if sys::pidfds_refused(&e) {
                    "pidfd_open (shmkit holds each child through a pidfd: Linux 5.3 or \
                     later, no seccomp filter refusing pidfd_open; valgrind has none)"
                } else {
                    "pidfd_open"
                };
                return Err(io_err(op)(e));
            }
        };
        if let Some(payload) = to_send {
            let (tramp, func) = (offset_of_fn(tramp), offset_of_fn(func));
            let request_name = name.clone();
            // A child that died at once makes this fail with EPIPE; join reports how.
            let _ = wire::send(
                sock.as_fd(),
                move |args| Message::Request {
                    tramp,
                    func,
                    name: request_name,
                    args,
                },
                payload,
            );
        }
        Ok(Process::started(
            name,
            pid,
            sock,
            pidfd,
            std::any::type_name::<A>(),
        ))
    }
}
