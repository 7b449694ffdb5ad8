//! Read-only introspection of a robust lock segment (`Mutex`, `RLock`, `Value`, `Array`,
//! `Dict`), for tools (`shmkit inspect`): whether the lock is held, by which process
//! slot, whether that holder lives, who sleeps on it — a snapshot taken without
//! registering (no liveness slot is claimed, no generation bumped, no word written).
//!
//! ```
//! let name = format!("shmkit-doc-lock-inspect-{}", std::process::id());
//! let m = shmkit_sync::Mutex::create(&name, 0u64)?;
//! let seg = shmkit_segment::Segment::open(&name)?;
//! let free = shmkit_sync::inspect::inspect(&seg)?.expect("a lock kind");
//! assert!(free.holder.is_none());
//! let _guard = m.lock()?;
//! let held = shmkit_sync::inspect::inspect(&seg)?.expect("a lock kind");
//! assert_eq!(held.holder.as_ref().map(|h| h.alive), Some(Some(true)));
//! # Ok::<(), shmkit_sync::Error>(())
//! ```
//!
//! The lock word records the holder's *process slot* and generation, never a pid (pids
//! are reused; the slot's liveness is an OFD lock the kernel drops when the process
//! dies). For people, a taker also writes its pid and token next to the word after
//! taking it ([`HolderView::pid`], also for a holder that died); liveness never rests on
//! it. A tool can cross-check a live holder's pid: the process whose open file holds
//! liveness byte [`shmkit_segment::LIVENESS_BASE`]` + slot` (`/proc/<pid>/fdinfo`).
//!
//! Every word is untrusted (DESIGN rule 2): a value that breaks an invariant is listed
//! in `problems`; a payload too small for the lock is [`Error::Corrupted`].

use serde::Serialize;
use shmkit_segment::{Kind, Segment};

use crate::lock::{
    DATA_OFFSET, GEN_MASK, LockState, MAX_PROCESSES, TOKEN_MASK, WAITERS, token_gen, token_slot,
};
use crate::primitive::Ordering;
use crate::{Error, Result};

pub use crate::dict::view::{DictView, inspect_dict};

/// A snapshot of one robust lock.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LockView {
    /// The raw lock word (table in `lock.rs`: bit 31 waiters, 30..10 generation, 9..0 slot).
    pub word: u32,
    /// The holder, if the lock is held.
    pub holder: Option<HolderView>,
    /// Someone may be asleep waiting for the lock (the word's `WAITERS` bit).
    pub waiters: bool,
    /// A holder died and nobody has called `mark_consistent` since: the data may be
    /// half-updated.
    pub inconsistent: bool,
    /// How many times the lock was taken over from a dead holder.
    pub recoveries: u32,
    /// `RLock` only: the owning thread's kernel thread id (0: none) and recursion depth.
    pub rlock: Option<(u32, u32)>,
    /// Processes registered with the lock whose liveness slot is held now.
    pub live_slots: Vec<u32>,
    /// Process slots ever registered (a nonzero generation).
    pub used_slots: u32,
    /// Broken invariants, each naming what was found.
    pub problems: Vec<String>,
}

/// The process slot named by a held lock word.
#[derive(Debug, Clone, Serialize)]
pub struct HolderView {
    /// The holder's process slot (its liveness byte is `LIVENESS_BASE + slot`).
    pub slot: u32,
    /// The generation the holder registered with.
    pub generation: u32,
    /// Whether the holder lives: `Some(false)` when its liveness slot is free (the
    /// kernel released it: the process died) or the slot's generation moved on (another
    /// process took the slot after the holder died); `None` if the kernel could not be
    /// asked.
    pub alive: Option<bool>,
    /// Why a dead holder is known to be dead.
    pub dead_because: Option<&'static str>,
    /// The pid the holder recorded when it took the lock (`None` if the record belongs
    /// to another taker: the holder died between taking the lock and recording it).
    pub pid: Option<u32>,
}

/// Whether `kind` is a segment built on the robust lock.
pub fn is_lock_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Mutex | Kind::RLock | Kind::Value | Kind::Array | Kind::Dict
    )
}

/// Snapshot the lock in `seg`; `Ok(None)` if its kind has no robust lock.
pub fn inspect(seg: &Segment) -> Result<Option<LockView>> {
    if !is_lock_kind(seg.kind()) {
        return Ok(None);
    }
    // Invariant restored: the payload holds the whole lock state (its size comes from
    // the mapping, checked at open), so every field below lies inside it.
    if seg.len() < DATA_OFFSET {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!(
                "{} payload bytes, a lock needs at least {DATA_OFFSET}",
                seg.len()
            ),
        });
    }
    // SAFETY: the payload holds at least DATA_OFFSET >= size_of::<LockState>() bytes
    // (checked above), 128-aligned; `LockState` is atomics only, valid for any bit
    // pattern; the reference borrows `seg`, which owns the mapping.
    let st = unsafe { &*seg.as_ptr().cast::<LockState>() };
    let mut problems = Vec::new();
    let word = st.word.load(Ordering::Acquire);
    let token = word & TOKEN_MASK;
    let holder = (token != 0).then(|| {
        let slot = token_slot(token);
        let generation = token_gen(token);
        if generation == 0 {
            problems.push(format!(
                "lock word {word:#010x} names slot {slot} with generation 0, which no process registers with"
            ));
        }
        // `slot` has 10 bits, so it indexes the 1024-entry table.
        let current = st.gens[slot as usize].load(Ordering::Acquire) & GEN_MASK;
        let (alive, dead_because) = if current != generation {
            (
                Some(false),
                Some("another process registered in its slot since (the holder died)"),
            )
        } else {
            match seg.is_alive(slot) {
                Ok(true) => (Some(true), None),
                Ok(false) => (
                    Some(false),
                    Some("its liveness slot is free: the kernel released it when the process died"),
                ),
                Err(_) => (None, None),
            }
        };
        // Recorded after the CAS that took the lock: trust it only if it names the same
        // token as the word (informational either way).
        let pid = (st.holder_token.load(Ordering::Relaxed) == token)
            .then(|| st.holder_pid.load(Ordering::Relaxed))
            .filter(|&p| p != 0);
        HolderView {
            slot,
            generation,
            alive,
            dead_because,
            pid,
        }
    });
    if token == 0 && word & WAITERS != 0 {
        problems.push(format!(
            "lock word {word:#010x}: the waiters bit is set on a free lock"
        ));
    }
    let inconsistent = st.inconsistent.load(Ordering::Relaxed);
    if inconsistent > 1 {
        problems.push(format!(
            "inconsistent flag is {inconsistent} (expected 0 or 1)"
        ));
    }
    let rlock = (seg.kind() == Kind::RLock).then(|| {
        (
            st.owner_thread.load(Ordering::Relaxed),
            st.depth.load(Ordering::Relaxed),
        )
    });
    let mut live_slots = Vec::new();
    let mut used_slots = 0;
    for slot in 0..MAX_PROCESSES {
        if st.gens[slot as usize].load(Ordering::Relaxed) & GEN_MASK == 0 {
            continue;
        }
        used_slots += 1;
        if seg.is_alive(slot).unwrap_or(false) {
            live_slots.push(slot);
        }
    }
    Ok(Some(LockView {
        word,
        holder,
        waiters: word & WAITERS != 0,
        inconsistent: inconsistent != 0,
        recoveries: st.recoveries.load(Ordering::Relaxed),
        rlock,
        live_slots,
        used_slots,
        problems,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mutex, RLock};

    #[test]
    #[cfg_attr(miri, ignore)]
    fn held_free_and_corrupted() {
        let name = format!("shmkit-test-lock-inspect-{}", std::process::id());
        let m = Mutex::create(&name, 1u32).unwrap();
        let seg = Segment::open(&name).unwrap();
        let v = inspect(&seg).unwrap().unwrap();
        assert!(v.holder.is_none() && v.problems.is_empty());
        assert_eq!(v.live_slots, vec![0]);
        {
            let _g = m.lock().unwrap();
            let v = inspect(&seg).unwrap().unwrap();
            let h = v.holder.unwrap();
            assert_eq!((h.slot, h.generation, h.alive), (0, 1, Some(true)));
        }
        // A token naming a slot no process holds: a dead holder, not a crash.
        seg.atomic_u32(0)
            .unwrap()
            .store((5 << 10) | 7, Ordering::SeqCst);
        let v = inspect(&seg).unwrap().unwrap();
        let h = v.holder.unwrap();
        assert_eq!((h.slot, h.alive), (7, Some(false)));
        seg.atomic_u32(0).unwrap().store(0, Ordering::SeqCst);

        let r = RLock::create(&format!("{name}-r")).unwrap();
        let _g = r.acquire().unwrap();
        let seg = Segment::open(&format!("{name}-r")).unwrap();
        let v = inspect(&seg).unwrap().unwrap();
        assert_eq!(v.rlock.map(|r| r.1), Some(1));
    }
}
