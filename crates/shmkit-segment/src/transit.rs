//! Handles on their way to a child process: who is to receive them.
//!
//! A shared object serialized for a child (a queue handle, say) reserves its place in
//! shared memory for the receiver before the receiver exists. If the child is killed
//! before it opens the handle, the reservation must not hold the object open for ever,
//! so it is tied to a process, identified as the kernel does: pid **and** start time
//! (a reused pid has another start time), and a zombie counts as dead.
//!
//! The protocol between an object's `Serialize` and the launcher (`shmkit-process`),
//! both in the thread that spawns:
//! 1. the launcher calls [`begin_handoff`] before it encodes a child's arguments;
//! 2. each `Serialize` that reserves something calls [`on_receiver`] with what to record
//!    once the receiver is known (until then the reservation is tied to the sender);
//! 3. the launcher, once the child is started, calls [`handed_to`] with its pid, which
//!    runs those callbacks.
//!
//! A value serialized outside a spawn (sent over a pipe, written to a file) stays tied
//! to the sender: it holds the object open while the sender lives, no longer.

use std::cell::RefCell;

/// A process as the kernel knows it: pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// Process id.
    pub pid: u32,
    /// Start time from `/proc/<pid>/stat` (field 22), which a reused pid does not share.
    pub start_time: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        ProcessId {
            pid: std::process::id(),
            start_time: crate::sys::own_start_time(),
        }
    }

    /// The process `pid`, if it exists now.
    pub fn of(pid: u32) -> Option<ProcessId> {
        let start_time = crate::sys::process_start_time(pid)?;
        Some(ProcessId { pid, start_time })
    }

    /// Whether this process still runs: same pid, same start time, not a zombie.
    ///
    /// ```
    /// let me = shmkit_segment::transit::ProcessId::current();
    /// assert!(me.is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        if self.pid == 0 {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let running = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X");
        running && crate::sys::parse_start_time(&stat) == Some(self.start_time)
    }
}

type Callback = Box<dyn FnOnce(ProcessId)>;

thread_local! {
    static PENDING: RefCell<Vec<Callback>> = const { RefCell::new(Vec::new()) };
    static REFUSAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Start a hand-off in this thread: forget callbacks left by values serialized outside
/// a spawn (they stay tied to their sender), and any earlier refusal.
pub fn begin_handoff() {
    PENDING.with(|p| p.borrow_mut().clear());
    REFUSAL.with(|r| r.borrow_mut().take());
}

/// Say why a value refused to be serialized for a child. Some encoders (postcard) drop
/// the message of a custom serialization error; the launcher reports this one instead.
pub fn refuse(reason: impl Into<String>) {
    REFUSAL.with(|r| *r.borrow_mut() = Some(reason.into()));
}

/// The reason given to [`refuse`] since [`begin_handoff`], if any (taken).
pub fn take_refusal() -> Option<String> {
    REFUSAL.with(|r| r.borrow_mut().take())
}

/// Run `record` with the receiving process once the launcher knows it (see the module
/// docs). Called from a `Serialize` impl.
pub fn on_receiver(record: impl FnOnce(ProcessId) + 'static) {
    PENDING.with(|p| p.borrow_mut().push(Box::new(record)));
}

/// The arguments encoded since [`begin_handoff`] went to the child `pid`: run the
/// recorded callbacks with it. A child already gone is recorded as pid 0 (never running).
pub fn handed_to(pid: u32) {
    let receiver = ProcessId::of(pid).unwrap_or(ProcessId {
        pid: 0,
        start_time: 0,
    });
    let callbacks = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for record in callbacks {
        record(receiver);
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_reused_pid_or_a_dead_process_is_not_running() {
        let me = ProcessId::current();
        assert!(me.is_running());
        let other_start = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other_start.is_running());
        assert!(
            !ProcessId {
                pid: 0,
                start_time: 0
            }
            .is_running()
        );
    }

    #[test]
    fn callbacks_run_once_with_the_receiver_and_begin_forgets_stale_ones() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = Rc::clone(&seen);
        on_receiver(move |p| s.borrow_mut().push(("stale", p.pid)));
        begin_handoff();
        let s = Rc::clone(&seen);
        on_receiver(move |p| s.borrow_mut().push(("fresh", p.pid)));
        handed_to(std::process::id());
        handed_to(std::process::id());
        assert_eq!(*seen.borrow(), vec![("fresh", std::process::id())]);
    }

    #[test]
    fn a_refusal_is_taken_once_and_forgotten_by_the_next_handoff() {
        refuse("no slot");
        assert_eq!(take_refusal().as_deref(), Some("no slot"));
        assert_eq!(take_refusal(), None);
        refuse("stale");
        begin_handoff();
        assert_eq!(take_refusal(), None);
    }
}
