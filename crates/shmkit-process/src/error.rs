//! [`ProcessError`](crate::ProcessError): what happened to a child, said in terms of its name and pid.

use std::time::Duration;

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

pub(crate) fn io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> ProcessError {
    move |source| ProcessError::Io { op, source }
}
