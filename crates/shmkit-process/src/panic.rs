//! Panics: the hook that reports the requested function's panic to the parent, and
//! [`catch_panic`](crate::catch_panic) for worker loops that own their tasks' panics.

use crate::current_process;
use crate::primitive::{AtomicBool, Ordering};
use crate::state::{CATCHING, CAUGHT, CHILD_SOCKET, PANIC_SENT, RUNS_THE_FUNCTION};
use crate::wire::{self, Message};

/// Run `f`, turning a panic in it into `Err(message)` — the panic's message followed by
/// its location, e.g. `"boom (at src/main.rs:3)"` — instead of unwinding further.
///
/// While `f` runs, shmkit's panic hook neither prints the panic nor reports it to the
/// parent as the child's failure: the caller owns it. Worker loops use this (a
/// `shmkit-pool` worker hands a task's panic back as that task's result and keeps
/// serving, as Python's `Pool` does with an exception).
///
/// ```
/// let r = shmkit_process::catch_panic(|| -> u32 { panic!("boom") });
/// let message = r.unwrap_err();
/// assert!(message.starts_with("boom (at "), "{message}");
/// assert_eq!(shmkit_process::catch_panic(|| 7), Ok(7));
/// ```
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    let outer = CATCHING.replace(true);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.set(outer);
    result.map_err(|payload| CAUGHT.take().unwrap_or_else(|| panic_message(&*payload)))
}

/// Install (once per process) the panic hook that reports the requested function's
/// panic to the parent: with its message and location, on the control socket. Every
/// other panic — in the parent, or in a child's helper threads — goes to the hook that
/// was installed before, unchanged; a panic inside [`catch_panic`](crate::catch_panic) is only recorded.
pub(crate) fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    // A plain load first: `catch_panic` calls this once per task, and a read-only check
    // keeps the cache line shared instead of bouncing it with a swap.
    if INSTALLED.load(Ordering::Acquire) || INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CATCHING.get() {
            CAUGHT.set(Some(describe_panic(info)));
            return;
        }
        let fd = CHILD_SOCKET.load(Ordering::Acquire);
        // Only a panic of the function itself fails the process (as in Python, an
        // exception in another thread of the child is printed, not returned).
        if fd < 0 || !RUNS_THE_FUNCTION.get() {
            return previous(info);
        }
        let message = describe_panic(info);
        if !PANIC_SENT.swap(true, Ordering::AcqRel) {
            // SAFETY: `fd` is the control socket owned by `child_main`, which never
            // returns, so the descriptor stays open while this hook can run.
            let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let _ = wire::send(
                sock,
                |_| Message::Panicked(message.clone()),
                wire::Encoded::EMPTY,
            );
        }
        // Like Python's child traceback: one line on the child's stderr, which the
        // parent's terminal shows; the message itself travels back to `join`.
        let me = current_process();
        let shown = match message.char_indices().nth(1000) {
            Some((end, _)) => format!("{}… (the whole message goes to join)", &message[..end]),
            None => message,
        };
        eprintln!("process '{}' (pid {}) panicked: {shown}", me.name, me.pid);
    }));
}

/// A panic's message followed by its location.
fn describe_panic(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = panic_message(info.payload());
    match info.location() {
        Some(l) => format!("{message} (at {}:{})", l.file(), l.line()),
        None => message,
    }
}

/// The text of a panic payload (`panic!` with a literal or with formatting), cut to
/// [`MAX_PANIC_MESSAGE`] bytes so that it always fits in one control message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let mut message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".into());
    if message.len() > MAX_PANIC_MESSAGE {
        let mut end = MAX_PANIC_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("… (cut)");
    }
    message
}

/// Longest panic message sent back (the control socket's buffer holds ~200 KiB).
const MAX_PANIC_MESSAGE: usize = 16 * 1024;
