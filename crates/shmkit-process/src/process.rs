//! [`Process`](crate::Process): a running child, joined for its result, signalled through its pidfd,
//! reaped whatever happens.

use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::error::io_err;
use crate::wire::{self, Message};
use crate::{Builder, ExitStatus, ProcessError, launcher, signal_name, sys};

enum Reply {
    Returned(wire::Payload),
    Unencodable(String),
    Panicked(String),
    Failed(String),
    /// The socket closed without a reply.
    Nothing,
}

/// A child process running a function that returns `R` — Python's
/// [`multiprocessing.Process`](https://docs.python.org/3/library/multiprocessing.html#multiprocessing.Process),
/// with the result coming back from [`join`](Self::join).
///
/// | Python | shmkit |
/// |---|---|
/// | `p = Process(target=f, args=(x,)); p.start()` | `let p = spawn(f, x)?;` |
/// | `p.join()` | `p.join()?` (returns `f`'s result) |
/// | `p.join(timeout)` | `p.join_timeout(d)` (`Err(Timeout)`, still joinable) |
/// | `p.is_alive()`, `p.exitcode`, `p.pid`, `p.name` | `is_alive()`, `exit_status()`, `pid()`, `name()` |
/// | `p.terminate()`, `p.kill()` | `terminate()` (SIGTERM), `kill()` (SIGKILL) |
///
/// ```
/// use std::time::Duration;
/// use shmkit_process::{Process, ProcessError, StartMethod};
///
/// fn nap(ms: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(ms));
///     ms
/// }
///
/// let mut p = Process::builder().start_method(StartMethod::Fork).spawn(nap, 10_000)?;
/// assert!(matches!(p.join_timeout(Duration::from_millis(10)), Err(ProcessError::Timeout { .. })));
/// p.kill()?;
/// match p.join() {
///     Err(ProcessError::Signaled { signal, .. }) => assert_eq!(signal, "SIGKILL"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), ProcessError>(())
/// ```
///
/// Dropping a `Process` without joining it does not kill the child: it keeps running
/// and is reaped in the background when it exits (no zombie).
pub struct Process<R> {
    name: String,
    pid: u32,
    sock: Option<OwnedFd>,
    pidfd: OwnedFd,
    reply: Option<Reply>,
    /// Set once, when the child is reaped (by `join`, `is_alive` or `exit_status`).
    status: OnceLock<ExitStatus>,
    joined: bool,
    /// The argument's type, for errors about it.
    arg_type: &'static str,
    _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("status", &self.status.get())
            .finish()
    }
}

impl<R> Process<R> {
    /// A child just started: `sock` is the parent's end of its control socket, `pidfd`
    /// names it for as long as it is not reaped.
    pub(crate) fn started(
        name: String,
        pid: u32,
        sock: OwnedFd,
        pidfd: OwnedFd,
        arg_type: &'static str,
    ) -> Process<R> {
        Process {
            name,
            pid,
            sock: Some(sock),
            pidfd,
            reply: None,
            status: OnceLock::new(),
            joined: false,
            arg_type,
            _result: PhantomData,
        }
    }
}

impl Process<()> {
    /// A [`Builder`](crate::Builder) for name, start method, environment and parent-death behaviour.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Wait for the child to finish and return its result (Python's `join()`, plus the
    /// return value).
    pub fn join(mut self) -> Result<R, ProcessError> {
        self.join_deadline(None)
    }

    /// Like [`join`](Self::join), but gives up after `timeout` with
    /// [`ProcessError::Timeout`], leaving the process running and joinable.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        self.join_deadline(Some(Instant::now() + timeout))
    }

    fn timeout_error(&self, start: Instant) -> ProcessError {
        ProcessError::Timeout {
            name: self.name.clone(),
            pid: self.pid,
            waited: start.elapsed(),
        }
    }

    fn join_deadline(&mut self, deadline: Option<Instant>) -> Result<R, ProcessError> {
        let start = Instant::now();
        if self.joined {
            return Err(ProcessError::AlreadyJoined {
                name: self.name.clone(),
            });
        }
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // 1. The reply (or EOF). The child sends before it exits, so when its pidfd is
        //    readable any reply is already queued on the socket.
        if self.reply.is_none() {
            let sock = self.sock.as_ref().map(|s| s.as_fd());
            let ready = match sock {
                Some(s) => sys::poll_readable(&[s, self.pidfd.as_fd()], remaining())
                    .map_err(io_err("poll"))?,
                None => vec![true, true],
            };
            if !ready.iter().any(|&r| r) {
                return Err(self.timeout_error(start));
            }
            // Block only when the socket is readable: if just the pidfd is, the child
            // exited, and anything it sent is already queued. (A blocking read there
            // would hang while a grandchild that inherited the socket keeps it open.)
            self.reply = Some(self.read_reply(ready[0]));
            self.sock = None;
        }
        // 2. The exit, so the child is reaped before we return.
        if self.status.get().is_none() {
            let ready =
                sys::poll_readable(&[self.pidfd.as_fd()], remaining()).map_err(io_err("poll"))?;
            if !ready[0] {
                return Err(self.timeout_error(start));
            }
            self.reap_exited();
        }
        self.joined = true;
        let status = self.status.get().copied().unwrap_or(ExitStatus::Exited(-1));
        match self.reply.take().unwrap_or(Reply::Nothing) {
            Reply::Returned(payload) => payload.decode().map_err(|e| ProcessError::Decode {
                name: self.name.clone(),
                what: format!("result {}", std::any::type_name::<R>()),
                reason: e.to_string(),
            }),
            Reply::Panicked(message) => Err(ProcessError::Panicked {
                name: self.name.clone(),
                pid: self.pid,
                message,
            }),
            Reply::Unencodable(reason) => Err(ProcessError::Encode {
                type_name: std::any::type_name::<R>(),
                reason,
            }),
            Reply::Failed(reason) => Err(ProcessError::Decode {
                name: self.name.clone(),
                what: format!("argument {}", self.arg_type),
                reason,
            }),
            Reply::Nothing => Err(match status {
                ExitStatus::Signaled(sig) => ProcessError::Signaled {
                    name: self.name.clone(),
                    pid: self.pid,
                    signal: signal_name(sig),
                    number: sig,
                },
                ExitStatus::Exited(code) => ProcessError::ExitedWithoutResult {
                    name: self.name.clone(),
                    pid: self.pid,
                    code,
                },
            }),
        }
    }

    fn read_reply(&mut self, wait: bool) -> Reply {
        let Some(sock) = self.sock.as_ref() else {
            return Reply::Nothing;
        };
        match wire::recv(sock.as_fd(), wait) {
            Ok(Some((Message::Returned(body), fd))) => match wire::open_body(body, fd) {
                Ok(p) => Reply::Returned(p),
                Err(e) => Reply::Failed(format!("could not read the result: {e}")),
            },
            Ok(Some((Message::Panicked(m), _))) => Reply::Panicked(m),
            Ok(Some((Message::Failed(m), _))) => Reply::Failed(m),
            Ok(Some((Message::Unencodable(m), _))) => Reply::Unencodable(m),
            Ok(Some((Message::Request { .. }, _))) => {
                Reply::Failed("the child sent a request instead of a result".into())
            }
            Ok(None) | Err(_) => Reply::Nothing,
        }
    }
}

impl<R> Process<R> {
    /// The child's pidfd: it turns readable when the child exits, which is what an
    /// async `join` waits for before it joins without waiting (feature `internals`,
    /// for shmkit-async).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn pidfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Whether the child is still running (reaps it if it has exited, like Python's
    /// `is_alive()`). Never blocks.
    pub fn is_alive(&self) -> bool {
        self.exit_status().is_none()
    }

    /// How the child ended, or `None` while it runs (Python's `exitcode`). Never blocks.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        if self.status.get().is_none() {
            // The pidfd turns readable when the child exits (kernel-released, no pid race).
            let exited = sys::poll_readable(&[self.pidfd.as_fd()], Some(Duration::ZERO))
                .map(|r| r[0])
                .unwrap_or(false);
            if exited {
                self.reap_exited();
            }
        }
        self.status.get().copied()
    }

    /// Reap the child, which has exited (its pidfd is readable), and record how it
    /// ended. Threads racing here wait for the one that reaps.
    fn reap_exited(&self) {
        self.status.get_or_init(|| {
            // `Exited(-1)`: reaped by someone else (a `waitpid(-1)` elsewhere in the
            // program), so the status is lost.
            sys::reap(self.pid, true)
                .ok()
                .flatten()
                .unwrap_or(ExitStatus::Exited(-1))
        });
    }

    /// Send SIGTERM (Python's `terminate()`). A no-op once the child was reaped.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal(rustix::process::Signal::TERM)
    }

    /// Send SIGKILL (Python's `kill()`). A no-op once the child was reaped.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal(rustix::process::Signal::KILL)
    }

    fn signal(&self, sig: rustix::process::Signal) -> Result<(), ProcessError> {
        // Through the pidfd: it names this child, never a process that reused its pid;
        // once the child has exited there is nothing to signal.
        match rustix::process::pidfd_send_signal(&self.pidfd, sig) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(io_err("pidfd_send_signal")(e.into())),
        }
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        if self.status.get().is_none() {
            // Not reaped yet: the reaper thread waits for it (on a duplicate of its
            // pidfd) and reaps it when it exits, so no zombie stays.
            match self.pidfd.try_clone() {
                Ok(pidfd) => launcher::adopt(self.pid, pidfd),
                Err(_) => {
                    let _ = sys::reap(self.pid, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StartMethod, spawn};

    fn double(x: i32) -> i32 {
        x * 2
    }

    // This unit-test binary has neither `init()` in a main nor `test_support!()`.
    #[test]
    #[cfg_attr(miri, ignore)] // spawns processes
    fn spawn_without_init_says_what_to_add() {
        let err = spawn(double, 1).unwrap_err();
        assert!(matches!(err, ProcessError::NotInitialized), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("shmkit::init();"), "{message}");
        assert!(message.contains("test_support!();"), "{message}");
    }

    #[test]
    #[cfg_attr(miri, ignore)] // forks
    fn fork_needs_no_init() {
        let p = Process::builder()
            .start_method(StartMethod::Fork)
            .spawn(double, 21)
            .unwrap();
        assert_eq!(p.join().unwrap(), 42);
    }

    #[test]
    fn process_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Process<Vec<u8>>>();
        check::<ProcessError>();
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(64), "signal 64");
    }
}
