//! The child's side: [`init`](crate::init) recognises a child, [`child_main`] runs its function and
//! sends the outcome back.

use std::os::fd::{AsFd, OwnedFd};

use crate::function::{Failure, Trampoline, addr_of_offset};
use crate::panic::{install_panic_hook, panic_message};
use crate::primitive::Ordering;
use crate::state::{
    CHILD_FD_ENV, CHILD_NAME_ENV, CHILD_SOCKET, CHILD_STDOUT_ENV, CURRENT_NAME, INITIALIZED,
    PANIC_SENT, RUNS_THE_FUNCTION,
};
use crate::wire::{self, Message};
use crate::{launcher, sys};

/// Call this first thing in `main`. In a child started by [`StartMethod::Spawn`](crate::StartMethod::Spawn) it runs
/// the requested function and exits; in the parent it returns at once and enables
/// `Spawn`.
///
/// ```no_run
/// shmkit_process::init(); // the first line of `main`
/// // ... the program ...
/// ```
pub fn init() {
    run_child_role_if_requested();
    INITIALIZED.store(true, Ordering::Release);
}

pub(crate) fn run_child_role_if_requested() {
    let Ok(fd) = std::env::var(CHILD_FD_ENV) else {
        return;
    };
    let name = std::env::var(CHILD_NAME_ENV).unwrap_or_else(|_| "Process".into());
    let stdout = std::env::var(CHILD_STDOUT_ENV).ok();
    for var in [CHILD_FD_ENV, CHILD_NAME_ENV, CHILD_STDOUT_ENV] {
        // SAFETY: `init` runs first thing in main, before the program starts threads that
        // could read the environment concurrently. In a test binary the child runs a single
        // test (`--test-threads=1`), and libtest's main thread only waits for it meanwhile.
        unsafe { std::env::remove_var(var) };
    }
    if let Some(fd) = stdout.and_then(|fd| fd.parse().ok()) {
        use std::io::Write;
        let _ = std::io::stdout().flush(); // libtest's lines, to /dev/null
        // SAFETY: the parent passed this descriptor number for our exclusive use (it
        // cleared close-on-exec on it for this child only); nothing here owns it yet.
        let real = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let _ = sys::restore_stdout(real);
    }
    let sock = fd
        .parse()
        .map_err(|_| std::io::Error::other("bad descriptor number"))
        .and_then(sys::adopt_socket);
    match sock {
        Ok(sock) => child_main(sock, name, None),
        Err(e) => {
            eprintln!("shmkit child: {CHILD_FD_ENV}={fd} is not a control socket: {e}");
            std::process::exit(1);
        }
    }
}

pub(crate) fn child_main(sock: OwnedFd, name: String, direct: Option<launcher::Direct>) -> ! {
    sys::set_cloexec(sys::raw(&sock));
    // SYNC: Release, paired with the Acquire in `current_process`.
    CURRENT_NAME.store(Box::into_raw(Box::new(name.clone())), Ordering::Release);
    CHILD_SOCKET.store(sys::raw(&sock), Ordering::Release);
    crate::current::show_name(&name);
    // A Fork child inherits these from a parent that may itself be a child.
    PANIC_SENT.store(false, Ordering::Release);
    RUNS_THE_FUNCTION.set(true);
    // A Spawn child is a fresh process: install the hook now. A Fork child must not
    // (`set_hook` takes a lock a panicking parent thread may have held at the fork);
    // it inherited the hook, installed by the parent before its first fork.
    if direct.is_none() {
        install_panic_hook();
    }

    // Spawn: the request arrives on the socket (arguments inline or in a sealed memfd).
    // Fork: it is already in this process's memory, copied by fork() itself.
    let work = match direct {
        Some(d) => Some(Ok((
            d.tramp,
            d.func,
            wire::Payload::bytes(d.payload, d.fds),
        ))),
        None => match wire::recv(sock.as_fd(), true) {
            Ok(Some((
                Message::Request {
                    tramp, func, args, ..
                },
                fd,
            ))) => Some(
                wire::open_body(args, fd)
                    .map(|payload| (addr_of_offset(tramp), addr_of_offset(func), payload)),
            ),
            _ => None,
        },
    };
    let code = match work {
        Some(work) => {
            let outcome = work
                .map_err(|e| Failure::Argument(format!("could not read the arguments: {e}")))
                .and_then(|(tramp, f, payload)| {
                    // SAFETY: `tramp` is the address of a `Trampoline` of this same binary:
                    // Fork passes the address itself, Spawn its offset from `anchor`, which
                    // the re-executed binary (the same file) has at the same distance.
                    let t: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(tramp) };
                    std::panic::catch_unwind(move || t(f, payload))
                        .unwrap_or_else(|payload| Err(Failure::Panicked(panic_message(&*payload))))
                });
            match outcome {
                Ok(result) => match wire::send(sock.as_fd(), Message::Returned, result) {
                    Ok(()) => 0,
                    Err(_) => 1,
                },
                Err(Failure::Panicked(message)) => {
                    // The hook normally sent it already (with the location); if someone
                    // replaced our hook, the payload still says what happened.
                    if !PANIC_SENT.swap(true, Ordering::AcqRel) {
                        let _ = wire::send(
                            sock.as_fd(),
                            |_| Message::Panicked(message),
                            wire::Encoded::EMPTY,
                        );
                    }
                    1
                }
                Err(Failure::Argument(reason)) => {
                    let _ = wire::send(
                        sock.as_fd(),
                        |_| Message::Failed(reason),
                        wire::Encoded::EMPTY,
                    );
                    1
                }
                Err(Failure::Result(reason)) => {
                    let _ = wire::send(
                        sock.as_fd(),
                        |_| Message::Unencodable(reason),
                        wire::Encoded::EMPTY,
                    );
                    1
                }
            }
        }
        // The parent went away, or sent something else: nothing to run.
        None => 1,
    };
    // `exit` flushes std's stdout buffer itself, with a *try*-lock: in a Fork child, a
    // stdout lock another parent thread held at the fork is never released, and a plain
    // `stdout().flush()` here would hang on it.
    std::process::exit(code)
}
