//! Fork-aware liveness: open-file-description locks the kernel releases when a process
//! dies, on bytes far past the end of a segment's file (docs/architecture.md, "Liveness").

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex as StdMutex};

use crate::{Error, Result, Segment, sys};

/// Liveness slot `n` is an OFD lock on byte `LIVENESS_BASE + n` of the segment's file —
/// far past its end, so it costs no memory and never overlaps data.
pub const LIVENESS_BASE: u64 = 1 << 40;
/// The byte the creator keeps locked for as long as it lives.
pub(crate) const CREATOR_LOCK: u64 = LIVENESS_BASE - 1;

/// One process's view of the liveness locks: the open file description its locks live
/// on, and the slots it holds there (the kernel reports only *other* descriptions'
/// locks, so `is_alive` must know its own).
#[derive(Debug, Clone)]
pub(crate) struct Locks {
    pub(crate) pid: u32,
    pub(crate) fd: Arc<OwnedFd>,
    pub(crate) held: Arc<StdMutex<Vec<u32>>>,
}

impl Locks {
    pub(crate) fn new(fd: &Arc<OwnedFd>) -> Locks {
        Locks {
            pid: std::process::id(),
            fd: Arc::clone(fd),
            held: Arc::default(),
        }
    }
}

impl Segment {
    /// Whether the creator is gone (its creator lock is released; the kernel does that
    /// when it dies). A stale named segment is what `shmkit rm --stale` removes.
    pub fn is_stale(&self) -> bool {
        if self.creator && std::process::id() == self.locks.pid {
            return false;
        }
        self.locks()
            .and_then(|l| {
                sys::byte_locked_elsewhere(&*l.fd, CREATOR_LOCK)
                    .map_err(|e| Error::from_io(&self.name, "fcntl", e, 0))
            })
            .is_ok_and(|locked| !locked)
    }

    /// This process's liveness locks. A process that inherited the segment through
    /// `fork()` gets an open file description of its own (by reopening
    /// `/proc/self/fd/<fd>`), so that its locks and its parent's see each other.
    pub(crate) fn locks(&self) -> Result<Locks> {
        let me = std::process::id();
        if me == self.locks.pid {
            return Ok(self.locks.clone());
        }
        let mut forked = self.forked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = forked.as_ref().filter(|l| l.pid == me) {
            return Ok(l.clone());
        }
        let fd = sys::open_proc_fd(&format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
            .map_err(|e| Error::from_io(&self.name, "reopen after fork", e, 0))?;
        let l = Locks::new(&Arc::new(fd));
        *forked = Some(l.clone());
        Ok(l)
    }

    /// Hold liveness slot `slot` for as long as the guard lives (and no longer than this
    /// process): others see [`is_alive(slot)`](Self::is_alive) true until then.
    /// [`SlotBusy`](Error::SlotBusy) if another participant holds it — or this same
    /// segment value already does.
    ///
    /// The lock is an OFD lock (`F_OFD_SETLK`) on byte [`LIVENESS_BASE`]` + slot` of the
    /// segment's file: it costs no memory, and the kernel releases it when the holder's
    /// process dies, so a reused pid can never pass for a live participant.
    ///
    /// ```
    /// # use shmkit_segment::{Error, Segment};
    /// let a = Segment::anonymous(8)?;
    /// let b = a.handle().open()?;
    /// let held = a.hold_liveness(3)?;
    /// assert!(matches!(b.hold_liveness(3), Err(Error::SlotBusy { slot: 3, .. })));
    /// assert!(b.is_alive(3)?);
    /// drop(held);
    /// assert!(!b.is_alive(3)?);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn hold_liveness(&self, slot: u32) -> Result<LivenessGuard> {
        let offset = LIVENESS_BASE + u64::from(slot);
        let locks = self.locks()?;
        let mut held = locks.held.lock().unwrap_or_else(|p| p.into_inner());
        let got = !held.contains(&slot)
            && sys::try_lock_byte(&*locks.fd, offset)
                .map_err(|e| Error::from_io(&self.name, "fcntl", e, 0))?;
        if !got {
            return Err(Error::SlotBusy {
                name: self.name.clone(),
                slot,
            });
        }
        held.push(slot);
        drop(held);
        Ok(LivenessGuard {
            locks,
            slot,
            offset,
        })
    }

    /// The first free slot in `range`, held: how a participant registers (mutex users,
    /// ring producers). [`SlotBusy`](Error::SlotBusy) (for the range's end) if all are taken.
    pub fn claim_liveness_slot(&self, range: std::ops::Range<u32>) -> Result<LivenessGuard> {
        for slot in range.clone() {
            match self.hold_liveness(slot) {
                Ok(g) => return Ok(g),
                Err(Error::SlotBusy { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::SlotBusy {
            name: self.name.clone(),
            slot: range.end,
        })
    }

    /// Whether liveness slot `slot` is held by a live participant (this handle included).
    pub fn is_alive(&self, slot: u32) -> Result<bool> {
        let locks = self.locks()?;
        if locks
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&slot)
        {
            return Ok(true);
        }
        sys::byte_locked_elsewhere(&*locks.fd, LIVENESS_BASE + u64::from(slot))
            .map_err(|e| Error::from_io(&self.name, "fcntl", e, 0))
    }
}

/// A held liveness slot; the kernel releases it if this process dies, and dropping the
/// guard releases it too. See [`Segment::hold_liveness`].
#[derive(Debug)]
pub struct LivenessGuard {
    locks: Locks,
    slot: u32,
    offset: u64,
}

impl LivenessGuard {
    /// The slot held.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

impl Drop for LivenessGuard {
    fn drop(&mut self) {
        // A copy inherited through fork() must not release its parent's lock (the open
        // file description, and so the lock, is shared with the parent).
        if std::process::id() != self.locks.pid {
            return;
        }
        let _ = sys::unlock_byte(&*self.locks.fd, self.offset);
        let mut held = self.locks.held.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|&s| s != self.slot);
    }
}
