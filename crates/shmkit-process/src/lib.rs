//! Run a Rust function in a child process — Python's
//! [`multiprocessing.Process`](https://docs.python.org/3/library/multiprocessing.html#the-process-class)
//! for Rust.
//!
//! ```
//! use shmkit_process::{Process, StartMethod};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! // Fork needs no `init()`, so this example runs as written, even under rustdoc.
//! let child = Process::builder()
//!     .name("squarer")
//!     .start_method(StartMethod::Fork)
//!     .spawn(square, 7)?;
//! assert_eq!(child.join()?, 49);
//! # Ok::<(), shmkit_process::ProcessError>(())
//! ```
//!
//! The default start method, [`Spawn`](StartMethod::Spawn), re-executes the program, so
//! `main` must let a child find its function: call [`init`] first thing.
//!
//! ```no_run
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), shmkit_process::ProcessError> {
//!     shmkit_process::init(); // first line of main: this binary may be a child
//!     let child = shmkit_process::spawn(square, 7)?;
//!     assert_eq!(child.join()?, 49);
//!     Ok(())
//! }
//! ```
//! (`no_run`: rustdoc's generated `main` has no `init()`; the same code runs as
//! `examples/process_basic.rs` and in this crate's tests.)
//!
//! - [`spawn`] starts `f(args)` in a child; [`Process::join`] returns its result, or a
//!   [`ProcessError`] saying that it panicked (with the message), was killed by a signal
//!   (named), or exited without a result. `f` is a `fn(A) -> R` — a function or a
//!   non-capturing closure — and `A`, `R` are any serde types.
//! - Start methods as in Python: [`StartMethod::Spawn`] (re-execute this binary; the
//!   default, safe with threads) and [`StartMethod::Fork`] (faster; see its caveats).
//! - Every child is reaped, also when its [`Process`] is dropped without `join`; a child
//!   dies with its parent unless started with [`Builder::daemon`]`(false)`.
//! - In `cargo test` binaries, put [`test_support!()`](test_support) in the test file.
//! - [`cpu_count`] and [`current_process`] as in Python.
//!
//! Handles of shmkit objects are serde values that reopen the same object in the child,
//! so they are passed as ordinary arguments — e.g. a
//! [`shmkit_segment::SegmentHandle`]: `spawn(worker, segment.handle())`, and the
//! worker calls `handle.open()`. That is also the way to share big data without copying
//! it: an argument is encoded and copied once into the child; a segment is mapped.
//!
//! Arguments and results travel on a Unix `SOCK_SEQPACKET` control socket inherited by
//! the child: inline up to 64 KiB, above that in a sealed memfd (passed with
//! `SCM_RIGHTS`) that the receiver maps and decodes in place. Liveness rests on the
//! child's pidfd, never on a bare pid.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod launcher;
mod primitive;
mod sys;
mod wire;

use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use primitive::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
pub use sys::{ExitStatus, signal_name};
use wire::Message;

pub(crate) const CHILD_FD_ENV: &str = "SHMKIT_PROCESS_FD";
pub(crate) const CHILD_NAME_ENV: &str = "SHMKIT_PROCESS_NAME";
/// Test-binary children only: the descriptor of the real stdout (fd 1 is /dev/null
/// until the child entry runs, so libtest's own lines stay out of the parent's output).
pub(crate) const CHILD_STDOUT_ENV: &str = "SHMKIT_PROCESS_STDOUT";

static INITIALIZED: AtomicBool = AtomicBool::new(false);
/// `module_path!()` of the `test_support!()` of this test binary, if any.
static TEST_ENTRY: OnceLock<&'static str> = OnceLock::new();
/// This process's name once it runs as a child (a leaked `String`; null: `MainProcess`).
/// A pointer rather than a `OnceLock`, so a Fork child of a child can set its own.
static CURRENT_NAME: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
/// The child's control socket, for the panic hook (-1 outside a child).
static CHILD_SOCKET: AtomicI32 = AtomicI32::new(-1);
static PANIC_SENT: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// True on the thread of a child that runs the requested function.
    static RUNS_THE_FUNCTION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// True while this thread runs inside [`catch_panic`].
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The message (with location) of the last panic [`catch_panic`] caught here.
    static CAUGHT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

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

/// Errors of spawning and joining: what happened to the child, said in terms of its
/// name and pid.
///
/// ```
/// use shmkit_process::{Process, ProcessError, StartMethod};
///
/// fn parse(text: String) -> u32 {
///     text.parse().expect("a number")
/// }
///
/// let p = Process::builder()
///     .name("parser")
///     .start_method(StartMethod::Fork)
///     .spawn(parse, "forty-two".to_string())?;
/// match p.join() {
///     Err(ProcessError::Panicked { name, message, .. }) => {
///         assert_eq!(name, "parser");
///         assert!(message.contains("a number"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), ProcessError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// `Spawn` needs this binary to act as a child when re-executed.
    #[error(
        "shmkit_process::init() was not called: add `shmkit::init();` (or \
         `shmkit_process::init();`) as the first line of main, or \
         `shmkit_process::test_support!();` to a test file, or use StartMethod::Fork"
    )]
    NotInitialized,
    /// The child's function panicked.
    #[error("process '{name}' (pid {pid}) panicked: {message}")]
    Panicked {
        /// The process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The panic message.
        message: String,
    },
    /// A signal ended the child before it returned a result.
    #[error("process '{name}' (pid {pid}) was killed by {signal}")]
    Signaled {
        /// The process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// The signal's name, e.g. `SIGKILL`.
        signal: String,
        /// The signal's number.
        number: i32,
    },
    /// The child exited without sending a result (e.g. it called `std::process::exit`).
    #[error("process '{name}' (pid {pid}) exited with code {code} without a result")]
    ExitedWithoutResult {
        /// The process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// Its exit code.
        code: i32,
    },
    /// `join_timeout` ran out; the process is still running and can be joined again.
    #[error("process '{name}' (pid {pid}) still running after {waited:?}")]
    Timeout {
        /// The process name.
        name: String,
        /// Its pid.
        pid: u32,
        /// How long the join waited.
        waited: Duration,
    },
    /// An argument or result could not be encoded.
    #[error("could not encode {type_name}: {reason}")]
    Encode {
        /// The type.
        type_name: &'static str,
        /// Why.
        reason: String,
    },
    /// A result could not be decoded, or the child could not decode its argument.
    #[error("process '{name}': could not decode {what}: {reason}")]
    Decode {
        /// The process name.
        name: String,
        /// What failed to decode (the type).
        what: String,
        /// Why.
        reason: String,
    },
    /// The process was already joined.
    #[error("process '{name}' was already joined")]
    AlreadyJoined {
        /// The process name.
        name: String,
    },
    /// An operating-system error.
    #[error("{op} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> ProcessError {
    move |source| ProcessError::Io { op, source }
}

/// How a child process starts, as in Python's `multiprocessing.set_start_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// Re-execute the current binary (`/proc/self/exe`), which must call [`init`] first
    /// thing in `main` (or contain [`test_support!()`](test_support)). The child starts
    /// clean: safe whatever threads and locks the parent has. The default.
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

/// Call this first thing in `main`. In a child started by [`StartMethod::Spawn`] it runs
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

fn run_child_role_if_requested() {
    let Ok(fd) = std::env::var(CHILD_FD_ENV) else {
        return;
    };
    let name = std::env::var(CHILD_NAME_ENV).unwrap_or_else(|_| "Process".into());
    let stdout = std::env::var(CHILD_STDOUT_ENV).ok();
    // SAFETY: `init` runs first thing in main, before the program starts threads that
    // could read the environment concurrently. In a test binary the child runs a single
    // test (`--test-threads=1`), and libtest's main thread only waits for it meanwhile.
    unsafe {
        std::env::remove_var(CHILD_FD_ENV);
        std::env::remove_var(CHILD_NAME_ENV);
        std::env::remove_var(CHILD_STDOUT_ENV);
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

/// Test support; use [`test_support!()`](test_support) rather than this.
#[doc(hidden)]
pub mod __private {
    pub use ctor;

    /// Record where the generated child-entry test of this test binary is (called by a
    /// `ctor` before main: it stores a `&'static str`, nothing more — no allocation, no
    /// user code).
    pub fn register_test_entry(module_path: &'static str) {
        let _ = super::TEST_ENTRY.set(module_path);
    }

    /// The body of the generated test: run the child role if this process is a child.
    pub fn test_child_entry() {
        super::run_child_role_if_requested();
    }
}

/// Lets a `cargo test` binary start children with [`StartMethod::Spawn`]: put it once at
/// the top level of each integration-test file (or test module) that spawns.
///
/// It expands to a test named `__shmkit_child_entry` that does nothing in a normal run;
/// a child is this test binary re-executed to run only that test, which then runs the
/// requested function. A constructor records the test's name before main (it stores a
/// string, nothing more).
///
/// For libtest binaries (the default `harness = true`). A test target with
/// `harness = false` has a `main` of its own: call [`init`] there instead.
/// Calling `init()` inside a test is harmless; children still run the generated test.
///
/// ```ignore
/// shmkit_process::test_support!();
///
/// #[test]
/// fn doubles_in_a_child() {
///     fn double(x: i32) -> i32 { x * 2 }
///     assert_eq!(shmkit_process::spawn(double, 21).unwrap().join().unwrap(), 42);
/// }
/// ```
#[macro_export]
macro_rules! test_support {
    () => {
        #[$crate::__private::ctor::ctor(unsafe, crate_path = $crate::__private::ctor)]
        fn __shmkit_register_test_entry() {
            $crate::__private::register_test_entry(::std::module_path!());
        }

        #[test]
        fn __shmkit_child_entry() {
            $crate::__private::test_child_entry();
        }
    };
}

/// The libtest name of the generated child-entry test: its module path without the
/// crate name (`tests/foo.rs` at top level: `__shmkit_child_entry`; in `mod m`:
/// `m::__shmkit_child_entry`).
fn test_entry_name(module_path: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::__shmkit_child_entry"),
        None => "__shmkit_child_entry".to_owned(),
    }
}

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

// ---------------------------------------------------------------------------------
// Function transport

type Trampoline = fn(usize, &[u8]) -> Result<wire::Encoded, Failure>;

/// Install (once per process) the panic hook that reports the requested function's
/// panic to the parent: with its message and location, on the control socket. Every
/// other panic — in the parent, or in a child's helper threads — goes to the hook that
/// was installed before, unchanged; a panic inside [`catch_panic`] is only recorded.
fn install_panic_hook() {
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
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
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

/// Why a child could not return a result.
enum Failure {
    /// The argument did not decode (or could not be read).
    Argument(String),
    /// The result did not encode.
    Result(String),
    /// The function panicked with this payload message.
    Panicked(String),
}

/// Offsets of functions are taken from this one; the child runs the same binary, so
/// `anchor + offset` is the same function there whatever address it was loaded at.
#[inline(never)]
fn anchor() {}

fn offset_of_fn(addr: usize) -> i64 {
    (addr as i64).wrapping_sub(anchor as fn() as usize as i64)
}

fn addr_of_offset(offset: i64) -> usize {
    (anchor as fn() as usize as i64).wrapping_add(offset) as usize
}

fn trampoline<A: DeserializeOwned, R: Serialize>(
    f: usize,
    input: &[u8],
) -> Result<wire::Encoded, Failure> {
    // SAFETY: `f` is the address of a `fn(A) -> R` in this binary: the parent computed
    // its offset from exactly such a function (`Builder::spawn`), monomorphised together
    // with this trampoline for the same `A` and `R`.
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(f) };
    let args: A = postcard::from_bytes(input).map_err(|e| Failure::Argument(e.to_string()))?;
    let result = f(args);
    wire::encode(&result).map_err(Failure::Result)
}

pub(crate) fn child_main(sock: OwnedFd, name: String, direct: Option<launcher::Direct>) -> ! {
    sys::set_cloexec(sys::raw(&sock));
    // SYNC: Release, paired with the Acquire in `current_process`.
    CURRENT_NAME.store(Box::into_raw(Box::new(name)), Ordering::Release);
    CHILD_SOCKET.store(sys::raw(&sock), Ordering::Release);
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
        Some(d) => Some(Ok((d.tramp, d.func, wire::Payload::Bytes(d.payload)))),
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
                    std::panic::catch_unwind(|| t(f, payload.as_slice()))
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

// ---------------------------------------------------------------------------------
// Process and Builder

/// Start `f(args)` in a child process with the default [`Builder`] (start method
/// [`Spawn`](StartMethod::Spawn)). Like `Process(target=f, args=(args,)).start()`.
///
/// `f` is a plain function or a non-capturing closure; `A` and `R` are serde types.
/// Fails with [`ProcessError::NotInitialized`] if this binary cannot act as a child
/// (no [`init`] in `main`, no [`test_support!()`](test_support) in a test binary).
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
    /// The process name (default `Process-N`), shown in errors and by
    /// [`current_process`] in the child.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The start method (default [`StartMethod::Spawn`]).
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
        let exec_args = match (self.method, TEST_ENTRY.get()) {
            (StartMethod::Fork, _) => Vec::new(),
            (StartMethod::Spawn, Some(module_path)) => vec![
                test_entry_name(module_path),
                "--exact".into(),
                "--nocapture".into(),
                "--test-threads=1".into(),
                "-q".into(),
            ],
            (StartMethod::Spawn, None) if INITIALIZED.load(Ordering::Acquire) => Vec::new(),
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
                let bytes =
                    postcard::to_allocvec(&args).map_err(|e| encode_error(e.to_string()))?;
                (None, Some(bytes))
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
        let direct = in_memory.map(|payload| launcher::Direct {
            tramp,
            func,
            payload,
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
        let pidfd = sys::pidfd(pid).map_err(io_err("pidfd_open"))?;
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
        Ok(Process {
            name,
            pid,
            sock: Some(sock),
            pidfd,
            reply: None,
            status: OnceLock::new(),
            joined: false,
            arg_type: std::any::type_name::<A>(),
            _result: PhantomData,
        })
    }
}

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

impl Process<()> {
    /// A [`Builder`] for name, start method, environment and parent-death behaviour.
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
            Reply::Returned(payload) => {
                postcard::from_bytes(payload.as_slice()).map_err(|e| ProcessError::Decode {
                    name: self.name.clone(),
                    what: format!("result {}", std::any::type_name::<R>()),
                    reason: e.to_string(),
                })
            }
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
    fn function_offsets_round_trip() {
        let f = double as fn(i32) -> i32 as usize;
        assert_eq!(addr_of_offset(offset_of_fn(f)), f);
    }

    #[test]
    fn test_entry_names() {
        assert_eq!(test_entry_name("process"), "__shmkit_child_entry");
        assert_eq!(
            test_entry_name("process::a::b"),
            "a::b::__shmkit_child_entry"
        );
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
