//! The handle registry shared by [`Queue`](crate::Queue) and
//! [`PodQueue`](crate::PodQueue): a header with two robust claim locks, the
//! `task_done`/`join` counter, and one state word per handle slot (whose liveness lock
//! says whether the handle's process lives).

use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::raw::spsc::Wake;
use crate::wait::{self, SLICE};
use shmkit_segment::{LivenessGuard, Segment};
use shmkit_sync::futex::Deadline;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handle slots per queue (also the MPMC producer-table length).
pub(crate) const MAX_HANDLES: u32 = 64;
/// Bytes before the ring in a queue segment: header line, handle states, and the
/// consumer lock on a line of its own (a lock shared by producers and consumers on one
/// line cost two cache-line transfers per item; measured, docs/ring.md).
pub(crate) const REGISTRY_BYTES: usize = 512;
/// Offset of the consumer claim lock (its own 128-byte line).
pub(crate) const CONS_LOCK_OFFSET: usize = 384;
/// Offset of the get side's turn marker, next to its lock (see `last_producer`).
const CONS_MARK_OFFSET: usize = CONS_LOCK_OFFSET + 4;
/// `ready` value once the creator has initialised the queue.
pub(crate) const READY: u32 = 0x5245_4459;

const FREE: u32 = 0;
const OPEN: u32 = 1;
const CLOSED: u32 = 2;

/// First line of a queue segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct QueueHeader {
    /// Producer claim lock: 0 free, else holder's slot + 1.
    pub(crate) prod_lock: AtomicU32,
    /// Handles serialized and not yet deserialized.
    pub(crate) in_transit: AtomicU32,
    /// [`READY`] once initialised.
    pub(crate) ready: AtomicU32,
    /// Turn marker of the put side: slot + 1 of the handle that took the producer
    /// claim lock last (0: none yet). A handle that finds its own mark resumes its
    /// parked ring core instead of reloading the shared positions.
    pub(crate) last_producer: AtomicU32,
    /// Items marked `task_done` (items put are the ring's message count).
    pub(crate) done: AtomicU64,
    /// `join` sleeps here.
    pub(crate) join_wake: Wake,
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<QueueHeader>() <= 128);

/// How [`Registry::lock`] got its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// It was free (or freed by its holder).
    Free,
    /// Its holder's process had died holding it.
    Over,
}

#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) seg: Arc<Segment>,
}

impl Registry {
    pub(crate) fn new(seg: Arc<Segment>) -> Result<Registry> {
        if seg.len() < REGISTRY_BYTES {
            return Err(Error::Corrupted {
                name: seg.name().to_owned(),
                what: format!("payload of {} bytes is too small for a queue", seg.len()),
            });
        }
        Ok(Registry { seg })
    }

    pub(crate) fn header(&self) -> &QueueHeader {
        // SAFETY: `new` checked the payload holds REGISTRY_BYTES; the payload base is
        // 128-aligned; `QueueHeader` is atomics only (any bit pattern is valid); the
        // segment lives as long as `self`.
        unsafe { &*self.seg.as_ptr().cast::<QueueHeader>() }
    }

    /// Consumer claim lock: 0 free, else holder's slot + 1.
    pub(crate) fn cons_lock(&self) -> &AtomicU32 {
        // SAFETY: offset 384 lies inside REGISTRY_BYTES (checked in `new`), 4-aligned;
        // any bit pattern is a valid `AtomicU32`; the segment lives as long as `self`.
        unsafe { &*self.seg.as_ptr().add(CONS_LOCK_OFFSET).cast::<AtomicU32>() }
    }

    /// The get side's turn marker (see [`QueueHeader::last_producer`]).
    pub(crate) fn last_consumer(&self) -> &AtomicU32 {
        // SAFETY: offset 388 lies inside REGISTRY_BYTES (checked in `new`), 4-aligned;
        // any bit pattern is a valid `AtomicU32`; the segment lives as long as `self`.
        unsafe { &*self.seg.as_ptr().add(CONS_MARK_OFFSET).cast::<AtomicU32>() }
    }

    fn state(&self, slot: u32) -> &AtomicU32 {
        assert!(slot < MAX_HANDLES);
        // SAFETY: states are 64 u32 words at offset 128, inside REGISTRY_BYTES (checked
        // in `new`), 4-aligned; `slot < 64` checked above.
        unsafe {
            &*self
                .seg
                .as_ptr()
                .add(128)
                .cast::<AtomicU32>()
                .add(slot as usize)
        }
    }

    /// Wait (bounded) until the creator marked the queue ready.
    pub(crate) fn wait_ready(&self) -> Result<()> {
        let start = Instant::now();
        while self.header().ready.load(Ordering::Acquire) != READY {
            if start.elapsed() > Duration::from_secs(1) {
                return Err(Error::Corrupted {
                    name: self.seg.name().to_owned(),
                    what: "queue never initialised by its creator".into(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Register a handle: a free liveness slot for which `accept(slot)` holds.
    pub(crate) fn register(&self, accept: impl Fn(u32) -> bool) -> Result<LivenessGuard> {
        let mut rejected = Vec::new();
        let guard = loop {
            let g = self
                .seg
                .claim_liveness_slot(0..MAX_HANDLES)
                .map_err(|e| match e {
                    shmkit_segment::Error::SlotBusy { .. } => Error::TooManyHandles {
                        name: self.seg.name().to_owned(),
                        max: MAX_HANDLES,
                    },
                    e => Error::Segment(e),
                })?;
            if accept(g.slot()) {
                break g;
            }
            rejected.push(g);
        };
        drop(rejected);
        let slot = guard.slot();
        let h = self.header();
        // A lock still naming our slot was held by the dead previous owner: free it.
        let _ = h
            .prod_lock
            .compare_exchange(slot + 1, 0, Ordering::AcqRel, Ordering::Relaxed);
        let _ = self
            .cons_lock()
            .compare_exchange(slot + 1, 0, Ordering::AcqRel, Ordering::Relaxed);
        self.state(slot).store(OPEN, Ordering::Release);
        Ok(guard)
    }

    pub(crate) fn unregister(&self, slot: u32) {
        self.state(slot).store(FREE, Ordering::Release);
    }

    pub(crate) fn close(&self, slot: u32) {
        self.state(slot).store(CLOSED, Ordering::Release);
    }

    pub(crate) fn is_closed(&self, slot: u32) -> bool {
        self.state(slot).load(Ordering::Acquire) == CLOSED
    }

    /// Whether any other handle could still put (open, its process alive), or one is
    /// on its way to another process.
    pub(crate) fn others_can_put(&self, me: u32) -> bool {
        if self.header().in_transit.load(Ordering::Acquire) > 0 {
            return true;
        }
        (0..MAX_HANDLES).any(|s| {
            s != me
                && self.state(s).load(Ordering::Acquire) == OPEN
                && self.seg.is_alive(s).unwrap_or(true)
        })
    }

    /// Whether any other handle lives (could get what we put).
    pub(crate) fn others_alive(&self, me: u32) -> bool {
        if self.header().in_transit.load(Ordering::Acquire) > 0 {
            return true;
        }
        (0..MAX_HANDLES).any(|s| {
            s != me
                && self.state(s).load(Ordering::Acquire) != FREE
                && self.seg.is_alive(s).unwrap_or(true)
        })
    }

    /// Take a claim lock (robust: a lock whose holder died is taken over).
    /// Waits at most `timeout` (`None`: forever); the deadline is computed only when
    /// the lock is contended. Returns [`Taken::Over`] if the holder had died: its turn
    /// marker and whatever it wrote are then not to be trusted.
    pub(crate) fn lock(
        &self,
        word: &AtomicU32,
        me: u32,
        timeout: Option<Duration>,
    ) -> Result<Taken> {
        let mine = me + 1;
        // SYNC: Acquire, as below.
        if word
            .compare_exchange(0, mine, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Taken::Free);
        }
        let dl = Deadline::after(timeout);
        let mut tries = 0u32;
        loop {
            // SYNC: Acquire, paired with the Release in `unlock`: the previous holder's
            // ring updates are visible to us.
            let out_of_time = tries >= 64 && dl.expired();
            match word.compare_exchange_weak(0, mine, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok(Taken::Free),
                // Every 256 tries, and once more when time is up (so that even a
                // zero timeout takes over a dead holder's lock), ask about the holder.
                Err(holder) if holder != 0 && (tries % 256 == 255 || out_of_time) => {
                    let dead =
                        holder > MAX_HANDLES || !self.seg.is_alive(holder - 1).unwrap_or(true);
                    if dead
                        && word
                            .compare_exchange(holder, mine, Ordering::Acquire, Ordering::Relaxed)
                            .is_ok()
                    {
                        return Ok(Taken::Over);
                    }
                }
                Err(_) => {}
            }
            if out_of_time {
                return Err(Error::Timeout);
            }
            tries = tries.wrapping_add(1);
            if tries < 64 {
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    pub(crate) fn unlock(&self, word: &AtomicU32) {
        // SYNC: Release, paired with the Acquire in `lock`.
        word.store(0, Ordering::Release);
    }

    /// Count one item done; `put()` reads how many were put so far (the ring's
    /// message count, which a producer stores before the `tail` that makes its item
    /// visible, so a `task_done` for an item taken can never outrun it).
    pub(crate) fn task_done(&self, put: impl Fn() -> u64) -> Result<()> {
        let h = self.header();
        let n = put();
        let prev = h
            .done
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| {
                (d < n).then(|| d + 1)
            })
            .map_err(|_| Error::TaskDoneTooMany)?;
        if prev + 1 == n {
            wait::notify(&h.join_wake, true);
        }
        Ok(())
    }

    /// Wait until every item put is done.
    pub(crate) fn join(&self, dl: Deadline, put: impl Fn() -> u64) -> Result<()> {
        let h = self.header();
        let all_done = || h.done.load(Ordering::SeqCst) >= put();
        loop {
            if all_done() {
                return Ok(());
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            wait::sleep(&h.join_wake, all_done, dl.slice(SLICE));
        }
    }

    pub(crate) fn begin_transit(&self) {
        self.header().in_transit.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn end_transit(&self) {
        let _ = self
            .header()
            .in_transit
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

#[cfg(all(test, not(loom), not(miri)))]
mod tests {
    use super::*;
    use shmkit_segment::Kind;

    fn registry() -> Registry {
        let seg = Segment::builder("anonymous")
            .size(REGISTRY_BYTES + 1024)
            .kind(Kind::Queue)
            .anonymous()
            .unwrap();
        Registry::new(Arc::new(seg)).unwrap()
    }

    /// A claim lock naming a slot nobody holds (its process died) is taken over even by
    /// a caller with no time to wait; one held by a live handle is not.
    #[test]
    fn a_dead_holders_lock_is_taken_over_even_with_a_zero_timeout() {
        let reg = registry();
        let word = &reg.header().prod_lock;
        word.store(5 + 1, Ordering::SeqCst); // slot 5: never claimed, so not alive
        assert_eq!(
            reg.lock(word, 0, Some(Duration::ZERO)).unwrap(),
            Taken::Over
        );
        assert_eq!(word.load(Ordering::SeqCst), 1);
        reg.unlock(word);

        let live = reg.register(|_| true).unwrap();
        word.store(live.slot() + 1, Ordering::SeqCst);
        let me = (live.slot() + 1) % MAX_HANDLES;
        assert!(matches!(
            reg.lock(word, me, Some(Duration::ZERO)),
            Err(Error::Timeout)
        ));
        assert_eq!(word.load(Ordering::SeqCst), live.slot() + 1);
    }
}
