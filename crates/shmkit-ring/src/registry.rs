//! The handle registry shared by [`Queue`](crate::Queue) and
//! [`PodQueue`](crate::PodQueue): a header with two robust claim locks, the
//! `task_done`/`join` counter, and one state word per handle slot (whose liveness lock
//! says whether the handle's process lives).

use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::wait::SLICE;
use shmkit_segment::transit::ProcessId;
use shmkit_segment::{LivenessGuard, Segment};
use shmkit_sync::futex::Deadline;
use shmkit_sync::wake::WakeWord;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handle slots per queue (also the PodQueue producer-table length): more than the
/// largest `Pool` (and one per process of shmkit-sync's `MAX_PROCESSES`).
pub const MAX_HANDLES: u32 = 1024;
/// Offset of the consumer claim lock, on a line of its own (a lock shared by producers
/// and consumers on one line cost two cache-line transfers per item; measured,
/// docs/ring.md).
pub(crate) const CONS_LOCK_OFFSET: usize = 128;
/// Offset of the get side's turn marker, next to its lock (see `last_producer`).
pub(crate) const CONS_MARK_OFFSET: usize = CONS_LOCK_OFFSET + 4;
/// Offset of the position below which a growing queue's data pages were given back
/// (written under both claim locks; queue/growth.rs).
pub(crate) const RELEASED_TO_OFFSET: usize = CONS_LOCK_OFFSET + 8;
/// Offset of the handle table: [`MAX_HANDLES`] [`HandleEntry`]s.
pub(crate) const HANDLES_OFFSET: usize = 256;
/// Bytes before the ring (or the MPMC queue) in a queue segment: header line, consumer
/// lock line, handle table.
pub(crate) const REGISTRY_BYTES: usize =
    HANDLES_OFFSET + MAX_HANDLES as usize * core::mem::size_of::<HandleEntry>();
/// `ready` value once the creator has initialised the queue.
pub(crate) const READY: u32 = 0x5245_4459;

/// Handle states (the `state` word of a [`HandleEntry`]).
pub(crate) mod state {
    /// No handle.
    pub(crate) const FREE: u32 = 0;
    /// A handle that has not put (yet): not a producer once anyone has put.
    pub(crate) const OPEN: u32 = 1;
    /// A handle closed by `close()`: puts no more.
    pub(crate) const CLOSED: u32 = 2;
    /// A handle that has put: a producer until it closes, drops or dies.
    pub(crate) const PRODUCING: u32 = 3;
    /// Reserved for a handle serialized for another process and not opened yet.
    pub(crate) const TRANSIT: u32 = 4;
}
use state::{CLOSED, FREE, OPEN, PRODUCING, TRANSIT};

/// First line of a queue segment.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct QueueHeader {
    /// Producer claim lock: 0 free, else holder's slot + 1.
    pub(crate) prod_lock: AtomicU32,
    /// 1 once any handle has put: from then on only producing handles keep the queue
    /// connected (before, every open handle may still become one).
    pub(crate) ever_put: AtomicU32,
    /// [`READY`] once initialised.
    pub(crate) ready: AtomicU32,
    /// Turn marker of the put side: slot + 1 of the handle that took the producer
    /// claim lock last (0: none yet). A handle that finds its own mark resumes its
    /// parked ring core instead of reloading the shared positions.
    pub(crate) last_producer: AtomicU32,
    /// Items marked `task_done` (items put are the ring's message count).
    pub(crate) done: AtomicU64,
    /// `join` sleeps here.
    pub(crate) join_wake: WakeWord,
    /// Bit 0 ([`GROWING`]): the ring is sparse and grows and shrinks with what is
    /// unconsumed (queue/growth.rs); bit 1 ([`PACKED`]): framed records (raw/packed.rs).
    /// Written once before `ready`.
    pub(crate) flags: AtomicU32,
    /// Growing queues: bytes reserved or given back at a time (a multiple of 4096).
    /// Written once before `ready`.
    pub(crate) growth_step: AtomicU32,
    /// Most items the queue holds (`put` waits beyond); 0: no bound in items. Written
    /// once before `ready`.
    pub(crate) maxsize: AtomicU64,
    /// Growing queues: ring position up to which the data pages are reserved. Written
    /// under the put lock only.
    pub(crate) reserved_to: AtomicU64,
}

/// [`QueueHeader::flags`] bit: a sparse ring that grows and shrinks.
pub(crate) const GROWING: u32 = 1;

/// [`QueueHeader::flags`] bit: the ring's records are a `Queue`'s framed records
/// ([`crate::raw::packed`]); set by every queue this version creates, required at open.
pub(crate) const PACKED: u32 = 2;

#[cfg(not(shmkit_loom))]
const _: () = assert!(core::mem::size_of::<QueueHeader>() <= CONS_LOCK_OFFSET);

/// One handle slot. Only the holder of the slot's liveness lock writes it (a
/// registering or reserving process, or the handle itself); anyone reads it.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct HandleEntry {
    /// One of [`state`]'s values.
    pub(crate) state: AtomicU32,
    /// Bumped by each transit reservation, so a stale ticket never takes a slot.
    pub(crate) generation: AtomicU32,
    /// Transit: the serializing process (the reservation holds while it runs, until a
    /// receiver is recorded).
    pub(crate) sender_pid: AtomicU32,
    /// Transit: the receiving process once the launcher named it (0: not yet).
    pub(crate) receiver_pid: AtomicU32,
    /// Start time of `sender_pid`.
    pub(crate) sender_start: AtomicU64,
    /// Start time of `receiver_pid` (stored before it).
    pub(crate) receiver_start: AtomicU64,
}

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::size_of::<HandleEntry>() == 32);
    assert!(REGISTRY_BYTES.is_multiple_of(128));
};

/// A handle slot reserved for another process: what a serialized handle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Ticket {
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

/// Whether the transit reservation in `e` still holds: its receiver (or, until one is
/// recorded, its sender) runs.
pub(crate) fn ticket_live(e: &HandleEntry) -> bool {
    if e.state.load(Ordering::Acquire) != TRANSIT {
        return false;
    }
    // SYNC: Acquire, paired with the Release store of `receiver_pid` in
    // `bind_receiver`, which follows the store of `receiver_start`.
    let receiver = e.receiver_pid.load(Ordering::Acquire);
    let holder = if receiver != 0 {
        ProcessId {
            pid: receiver,
            start_time: e.receiver_start.load(Ordering::Relaxed),
        }
    } else {
        ProcessId {
            pid: e.sender_pid.load(Ordering::Relaxed),
            start_time: e.sender_start.load(Ordering::Relaxed),
        }
    };
    // u32::MAX: recorded as gone; never a running pid (pid_max is at most 2^22).
    holder.pid != u32::MAX && holder.is_running()
}

/// How [`Registry::lock`] got its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// It was free (or freed by its holder).
    Free,
    /// Its holder's process had died holding it.
    Over,
}

/// A claim lock held ([`Registry::lock_guard`]); dropping it unlocks.
#[derive(Debug)]
pub(crate) struct ClaimGuard<'a> {
    word: &'a AtomicU32,
}

impl Drop for ClaimGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SYNC: Release, paired with the Acquire in `Registry::lock`.
        self.word.store(0, Ordering::Release);
    }
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
                what: format!(
                    "payload of {} bytes is too small for a queue ({REGISTRY_BYTES} bytes of handle registry)",
                    seg.len()
                ),
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

    /// The address `offset` bytes into the registry.
    #[inline]
    fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset < REGISTRY_BYTES);
        // SAFETY: `new` checked the payload holds REGISTRY_BYTES, and `offset` is inside
        // them (asserted): in bounds of the mapping.
        unsafe { self.seg.as_ptr().add(offset) }
    }

    /// Consumer claim lock: 0 free, else holder's slot + 1.
    #[inline]
    pub(crate) fn cons_lock(&self) -> &AtomicU32 {
        // SAFETY: CONS_LOCK_OFFSET + 4 <= REGISTRY_BYTES, inside the payload (checked in
        // `new`), 4-aligned; any bit pattern is a valid `AtomicU32`; the segment lives as
        // long as `self`.
        unsafe { &*self.at(CONS_LOCK_OFFSET).cast::<AtomicU32>() }
    }

    /// The get side's turn marker (see [`QueueHeader::last_producer`]).
    #[inline]
    pub(crate) fn last_consumer(&self) -> &AtomicU32 {
        // SAFETY: CONS_MARK_OFFSET + 4 <= REGISTRY_BYTES, inside the payload (checked in
        // `new`), 4-aligned; any bit pattern is a valid `AtomicU32`; the segment lives as
        // long as `self`.
        unsafe { &*self.at(CONS_MARK_OFFSET).cast::<AtomicU32>() }
    }

    /// A growing queue's `released_to` position (see [`RELEASED_TO_OFFSET`]).
    pub(crate) fn released_to(&self) -> &AtomicU64 {
        // SAFETY: RELEASED_TO_OFFSET (136) + 8 <= REGISTRY_BYTES, inside the payload
        // (checked in `new`), 8-aligned on a 128-aligned base; any bit pattern is a valid
        // `AtomicU64`; the segment lives as long as `self`.
        unsafe { &*self.at(RELEASED_TO_OFFSET).cast::<AtomicU64>() }
    }

    #[inline]
    pub(crate) fn entry(&self, slot: u32) -> &HandleEntry {
        assert!(slot < MAX_HANDLES);
        let entry = self.at(HANDLES_OFFSET + slot as usize * size_of::<HandleEntry>());
        // SAFETY: MAX_HANDLES 32-byte entries at HANDLES_OFFSET end at REGISTRY_BYTES,
        // inside the payload (checked in `new`), and `slot < MAX_HANDLES` (asserted);
        // 8-aligned on a 128-aligned base; atomics only, any bit pattern is valid.
        unsafe { &*entry.cast::<HandleEntry>() }
    }

    #[inline]
    fn state(&self, slot: u32) -> &AtomicU32 {
        &self.entry(slot).state
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

    /// Whether the transit reservation in `slot` still holds (see [`ticket_live`]).
    pub(crate) fn ticket_live(&self, slot: u32) -> bool {
        ticket_live(self.entry(slot))
    }

    /// Hold the liveness lock of the first slot that nobody holds, whose transit
    /// reservation (if any) has lapsed and for which `accept(slot)` holds.
    /// [`Error::TooManyHandles`] if there is none.
    fn claim(&self, accept: impl Fn(u32) -> bool) -> Result<LivenessGuard> {
        for slot in 0..MAX_HANDLES {
            match self.seg.hold_liveness(slot) {
                Ok(g) if !self.ticket_live(slot) && accept(slot) => {
                    self.free_locks_of_dead_holder(slot);
                    return Ok(g);
                }
                Ok(_) | Err(shmkit_segment::Error::SlotBusy { .. }) => {}
                Err(e) => return Err(Error::Segment(e)),
            }
        }
        Err(Error::TooManyHandles {
            name: self.seg.name().to_owned(),
            max: MAX_HANDLES,
        })
    }

    /// A lock still naming `slot` was held by the dead previous owner: free it.
    fn free_locks_of_dead_holder(&self, slot: u32) {
        let h = self.header();
        let _ = h
            .prod_lock
            .compare_exchange(slot + 1, 0, Ordering::AcqRel, Ordering::Relaxed);
        let _ = self
            .cons_lock()
            .compare_exchange(slot + 1, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Register a handle: a free slot for which `accept(slot)` holds.
    pub(crate) fn register(&self, accept: impl Fn(u32) -> bool) -> Result<LivenessGuard> {
        let guard = self.claim(accept)?;
        self.state(guard.slot()).store(OPEN, Ordering::Release);
        Ok(guard)
    }

    /// Reserve a slot for a handle on its way to another process, tied to this process
    /// until [`bind_receiver`](Self::bind_receiver) names the receiver.
    pub(crate) fn reserve_transit(&self, accept: impl Fn(u32) -> bool) -> Result<Ticket> {
        let guard = self.claim(accept)?;
        let slot = guard.slot();
        let e = self.entry(slot);
        let me = ProcessId::current();
        let generation = e.generation.load(Ordering::Relaxed).wrapping_add(1);
        e.generation.store(generation, Ordering::Relaxed);
        e.receiver_pid.store(0, Ordering::Relaxed);
        e.sender_start.store(me.start_time, Ordering::Relaxed);
        e.sender_pid.store(me.pid, Ordering::Relaxed);
        // SYNC: Release, paired with the Acquire loads of `state` in `ticket_live` and
        // `take_transit`: the fields above are visible to whoever sees TRANSIT.
        e.state.store(TRANSIT, Ordering::Release);
        // The guard drops here: the slot is free for its receiver, and `claim` skips it
        // while the reservation holds.
        Ok(Ticket { slot, generation })
    }

    /// Record the process that is to open `ticket` (if it is still reserved).
    pub(crate) fn bind_receiver(&self, ticket: Ticket, receiver: ProcessId) {
        let e = self.entry(ticket.slot);
        if e.state.load(Ordering::Acquire) != TRANSIT
            || e.generation.load(Ordering::Relaxed) != ticket.generation
        {
            return;
        }
        e.receiver_start
            .store(receiver.start_time, Ordering::Relaxed);
        // SYNC: Release, paired with the Acquire in `ticket_live`. A receiver recorded as
        // pid 0 (already gone) ends the reservation.
        let pid = if receiver.pid == 0 {
            u32::MAX
        } else {
            receiver.pid
        };
        e.receiver_pid.store(pid, Ordering::Release);
    }

    /// Open the slot reserved by `ticket` as this process's handle: `None` if the
    /// reservation lapsed or was taken (the caller then registers a fresh slot).
    pub(crate) fn take_transit(&self, ticket: Ticket) -> Option<LivenessGuard> {
        if ticket.slot >= MAX_HANDLES {
            return None;
        }
        // A registering process may hold the slot's lock for a moment while it looks
        // at (and skips) the reservation: retry, bounded.
        let start = Instant::now();
        let guard = loop {
            match self.seg.hold_liveness(ticket.slot) {
                Ok(g) => break g,
                Err(shmkit_segment::Error::SlotBusy { .. })
                    if start.elapsed() < Duration::from_secs(2) =>
                {
                    std::thread::yield_now()
                }
                Err(_) => return None,
            }
        };
        let e = self.entry(ticket.slot);
        if e.state.load(Ordering::Acquire) != TRANSIT
            || e.generation.load(Ordering::Relaxed) != ticket.generation
        {
            return None;
        }
        self.free_locks_of_dead_holder(ticket.slot);
        e.state.store(OPEN, Ordering::Release);
        Some(guard)
    }

    pub(crate) fn unregister(&self, slot: u32) {
        self.state(slot).store(FREE, Ordering::Release);
    }

    pub(crate) fn close(&self, slot: u32) {
        self.state(slot).store(CLOSED, Ordering::Release);
    }

    #[inline]
    pub(crate) fn is_closed(&self, slot: u32) -> bool {
        self.state(slot).load(Ordering::Acquire) == CLOSED
    }

    /// This handle is about to put for the first time: it is a producer from now on.
    /// (Stored before the item is published, so a consumer that finds no producer
    /// also finds the item.)
    pub(crate) fn mark_producer(&self, slot: u32) {
        let _ =
            self.state(slot)
                .compare_exchange(OPEN, PRODUCING, Ordering::AcqRel, Ordering::Relaxed);
        let h = self.header();
        if h.ever_put.load(Ordering::Relaxed) == 0 {
            h.ever_put.store(1, Ordering::Release);
        }
    }

    /// Whether any other handle could still put: a producing handle whose process
    /// lives, a handle on its way to a live receiver, or — while nobody has put yet —
    /// any open handle.
    pub(crate) fn others_can_put(&self, me: u32) -> bool {
        let fresh = self.header().ever_put.load(Ordering::Acquire) == 0;
        (0..MAX_HANDLES).any(|s| {
            if s == me {
                return false;
            }
            match self.state(s).load(Ordering::Acquire) {
                PRODUCING => self.seg.is_alive(s).unwrap_or(true),
                OPEN if fresh => self.seg.is_alive(s).unwrap_or(true),
                TRANSIT => self.ticket_live(s),
                _ => false,
            }
        })
    }

    /// Whether any other handle lives (could get what we put).
    pub(crate) fn others_alive(&self, me: u32) -> bool {
        (0..MAX_HANDLES).any(|s| {
            if s == me {
                return false;
            }
            match self.state(s).load(Ordering::Acquire) {
                FREE => false,
                TRANSIT => self.ticket_live(s),
                _ => self.seg.is_alive(s).unwrap_or(true),
            }
        })
    }

    /// Take a claim lock (robust: a lock whose holder died is taken over).
    /// Waits at most `timeout` (`None`: forever); the deadline is computed only when
    /// the lock is contended. Returns [`Taken::Over`] if the holder had died: its turn
    /// marker and whatever it wrote are then not to be trusted.
    #[inline]
    pub(crate) fn lock(
        &self,
        word: &AtomicU32,
        me: u32,
        timeout: Option<Duration>,
    ) -> Result<Taken> {
        // SYNC: Acquire, as in `lock_contended`.
        if word
            .compare_exchange(0, me + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Taken::Free);
        }
        self.lock_contended(word, me, timeout)
    }

    /// A claim lock through a guard that unlocks it when dropped (also on unwind).
    #[inline]
    pub(crate) fn lock_guard<'a>(
        &self,
        word: &'a AtomicU32,
        me: u32,
        timeout: Option<Duration>,
    ) -> Result<(ClaimGuard<'a>, Taken)> {
        let taken = self.lock(word, me, timeout)?;
        Ok((ClaimGuard { word }, taken))
    }

    /// [`lock`](Self::lock) once the first try failed.
    #[cold]
    fn lock_contended(
        &self,
        word: &AtomicU32,
        me: u32,
        timeout: Option<Duration>,
    ) -> Result<Taken> {
        let mine = me + 1;
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

    #[inline]
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
            h.join_wake.notify();
        }
        Ok(())
    }

    /// What `join` waits for, for the async form: the `join` word, ready once every
    /// item put is done; nobody's death ends it (as the blocking `join`).
    #[cfg(feature = "internals")]
    pub(crate) fn join_side<'a>(
        &'a self,
        put: impl Fn() -> u64 + 'a,
    ) -> crate::wait_side::WaitSide<'a> {
        use crate::wait_side::{WaitSide, Words};
        let h = self.header();
        WaitSide::new(
            Words::Wake(&h.join_wake),
            move || h.done.load(Ordering::SeqCst) >= put(),
            || false,
        )
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
            h.join_wake.sleep(all_done, Some(dl.slice(SLICE)));
        }
    }
}

#[cfg(all(test, not(shmkit_loom), not(miri)))]
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
