//! The single-producer single-consumer byte ring for variable-size messages.
//!
//! Positions `head` (next byte to read) and `tail` (next byte to write) are monotonic
//! `u64` byte counts; the offset in the data area is `pos & (capacity - 1)`. Each
//! message is a record: an 8-byte length word, then the bytes, padded to a multiple of
//! 8. A record never crosses the end of the data area: when it would, the producer
//! writes the [`PADDING`] marker in place of a length word and the record starts at
//! offset 0. So every record, and every length word, is 8-byte aligned and contiguous.
//!
//! # Publication: the record is the signal
//! A length word is [`PUBLISHED`]` | len` once its record is complete, and 0 before:
//! the consumer finds a message by loading the length word at `head` (Acquire), not the
//! producer's `tail`, so a small message moves one cache line — the one holding it —
//! as FastForward and the Disruptor do. To keep "0 = nothing yet" true at every
//! position the consumer can reach, the producer zeroes the length word *after* each
//! record (the next record's) before it publishes the record's own length word
//! (Release). So a producer needs the record's bytes plus one word free ([`footprint`]).
//! A producer that dies before the length word's store published nothing: no torn
//! message is ever visible.
//!
//! The producer still stores `tail` (and its message count) after each record, on its
//! own line, which the consumer does not read on its fast path: it is the producer's
//! state for a successor, the sleepers' re-check reads the length word instead. A
//! successor producer that attaches walks forward from `tail` over records published
//! but not yet counted in it (a predecessor killed between the two stores) — sound,
//! because every word it reads was zeroed before the record in front of it was
//! published.
//!
//! The consumer stores `head` with `Release` only after it has finished reading, and the
//! producer loads it with `Acquire` before reusing the bytes — only when its cached copy
//! says the ring is full.
//!
//! A [`Queue`](crate::Queue) packs small items into framed records on this ring (two
//! more bits of the length word, a position inside the record in `head.item_pos`):
//! [`super::packed`]. Channels and pipes use bare records only.

use super::{RawError, align8};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;
use shmkit_sync::wake::WakeWord;

/// Length word marking "skip to offset 0": the rest of the data area is padding.
pub const PADDING: u64 = u64::MAX;

/// Bit of a length word that marks a published record (the rest is its length), so a
/// zero-length message is never read as "nothing yet" (0).
pub const PUBLISHED: u64 = 1 << 63;

/// Bytes of a record's length word.
pub const LEN_WORD: u64 = 8;

/// Smallest data area a ring accepts (bytes, power of two): room for a 8-byte message.
pub const MIN_CAPACITY: u64 = 32;

/// Largest data area a ring accepts (bytes, power of two): 2^40.
pub const MAX_CAPACITY: u64 = 1 << 40;

/// One side's cache line: its position and how many messages it has moved.
#[repr(C)]
#[derive(Debug)]
pub struct Side {
    /// Monotonic byte position (`tail` for the producer, `head` for the consumer).
    pub pos: AtomicU64,
    /// Messages committed (producer) or released (consumer) so far.
    pub count: AtomicU64,
    /// Consumer of a framed ring (a `Queue`, [`super::packed`]): the position just past
    /// the last item taken from the record at `pos`, or any position at or below `pos`
    /// (nothing taken from it yet). Unused (0) on the producer's line and in rings of
    /// bare records.
    pub item_pos: AtomicU64,
}

/// Read-mostly line: capacity, wake words, side states.
#[repr(C)]
#[derive(Debug)]
pub struct Meta {
    /// Data area size in bytes (power of two), written once before the segment is ready.
    pub capacity: AtomicU64,
    /// The consumer sleeps here waiting for data.
    pub data_wake: WakeWord,
    /// The producer sleeps here waiting for space.
    pub space_wake: WakeWord,
    /// Producer attachment state (see the shared layer's `side_state`).
    pub producer_state: AtomicU32,
    /// Consumer attachment state.
    pub consumer_state: AtomicU32,
    /// Pid of the process a handed-over producer role is on its way to (0: none
    /// recorded; `u32::MAX`: it never started). Shared layer only (`endpoint.rs`).
    pub producer_receiver: AtomicU32,
    /// The same for the consumer role.
    pub consumer_receiver: AtomicU32,
    /// Start time of `producer_receiver` (stored before it).
    pub producer_receiver_start: AtomicU64,
    /// Start time of `consumer_receiver` (stored before it).
    pub consumer_receiver_start: AtomicU64,
    /// The ring's wait strategy (`WaitStrategy` code), written once before the
    /// segment is ready.
    pub wait_strategy: AtomicU32,
    /// Zero (keeps the line's size a multiple of 8).
    pub reserved: AtomicU32,
}

/// The shared control block of one SPSC ring; the data area follows it.
#[repr(C)]
#[derive(Debug)]
pub struct SpscHeader {
    /// Producer's line.
    pub tail: CachePadded<Side>,
    /// Consumer's line.
    pub head: CachePadded<Side>,
    /// Read-mostly line.
    pub meta: CachePadded<Meta>,
}

/// Size of [`SpscHeader`] in shared memory; the data area starts at this offset.
pub const HEADER_BYTES: usize = 384;

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::size_of::<SpscHeader>() == HEADER_BYTES);
    assert!(core::mem::align_of::<SpscHeader>() <= 128);
    assert!(core::mem::size_of::<Side>() == 24);
    assert!(core::mem::size_of::<Meta>() == 64);
};

impl SpscHeader {
    /// A fresh header for a data area of `capacity` bytes (heap rings, loom models).
    pub fn new(capacity: u64) -> Self {
        SpscHeader {
            tail: CachePadded::new(Side {
                pos: AtomicU64::new(0),
                count: AtomicU64::new(0),
                item_pos: AtomicU64::new(0),
            }),
            head: CachePadded::new(Side {
                pos: AtomicU64::new(0),
                count: AtomicU64::new(0),
                item_pos: AtomicU64::new(0),
            }),
            meta: CachePadded::new(Meta {
                capacity: AtomicU64::new(capacity),
                data_wake: WakeWord::new(),
                space_wake: WakeWord::new(),
                producer_state: AtomicU32::new(0),
                consumer_state: AtomicU32::new(0),
                producer_receiver: AtomicU32::new(0),
                consumer_receiver: AtomicU32::new(0),
                producer_receiver_start: AtomicU64::new(0),
                consumer_receiver_start: AtomicU64::new(0),
                wait_strategy: AtomicU32::new(0),
                reserved: AtomicU32::new(0),
            }),
        }
    }

    /// Initialise a zeroed header in place (shared memory, before `ready`): the data
    /// area's size and the wait strategy's code.
    pub fn init(&self, capacity: u64, wait_strategy: u32) {
        // Relaxed: the segment's `ready` Release store publishes the whole header.
        self.meta.capacity.store(capacity, Ordering::Relaxed);
        self.meta
            .wait_strategy
            .store(wait_strategy, Ordering::Relaxed);
    }
}

/// Whether `capacity` is an acceptable data-area size.
pub fn valid_capacity(capacity: u64) -> bool {
    capacity.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity)
}

/// Bytes a record of `len` payload bytes occupies.
#[inline]
pub const fn record_len(len: u64) -> u64 {
    LEN_WORD + align8(len)
}

/// Free bytes a producer needs to place a record of `len` bytes (without padding): the
/// record and the next record's length word, which it zeroes before publishing.
#[inline]
pub const fn footprint(len: u64) -> u64 {
    record_len(len) + LEN_WORD
}

/// A ring: its header and data area. Copyable; the roles below borrow nothing from it.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    hdr: *const SpscHeader,
    pub(super) data: *mut u8,
    pub(super) cap: u64,
    /// Under loom, the length words live in loom atomics beside the data area (one per
    /// 8 bytes, see [`HeapRing`]), so loom checks their publication; null elsewhere.
    #[cfg(shmkit_loom)]
    words: *const AtomicU64,
}

// SAFETY: a `Ring` is two pointers into memory that `Ring::new`'s caller guarantees
// stays valid; all shared state behind them is atomics or bytes handed out under the
// SPSC protocol, so it may move to and be used from another thread.
unsafe impl Send for Ring {}
// SAFETY: as above; `&Ring` only gives access to atomics and to protocol-guarded bytes.
unsafe impl Sync for Ring {}

impl Ring {
    /// # Safety
    /// `hdr` points to an initialised [`SpscHeader`] and `data` to `cap` bytes, 8-byte
    /// aligned, both valid (and not moved or freed) for as long as this `Ring` or any
    /// role made from it is used; `cap` satisfies [`valid_capacity`]. The caller has
    /// checked `cap` against its own mapping size, not merely read it from the header.
    pub unsafe fn new(hdr: *const SpscHeader, data: *mut u8, cap: u64) -> Self {
        debug_assert!(valid_capacity(cap));
        debug_assert!((data as usize).is_multiple_of(8));
        Ring {
            hdr,
            data,
            cap,
            #[cfg(shmkit_loom)]
            words: core::ptr::null(),
        }
    }

    /// The shared header.
    pub fn header(&self) -> &SpscHeader {
        // SAFETY: `Ring::new`'s contract: `hdr` is valid while the ring is used.
        unsafe { &*self.hdr }
    }

    /// Data area size in bytes.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// Largest message this ring accepts: half the capacity minus the length word.
    /// A record of at most half the ring fits into an *empty* ring at any offset
    /// (either before the end, or after padding to the end), so a producer never needs
    /// the consumer's help to place a message into an empty ring.
    pub fn max_message(&self) -> usize {
        (self.cap / 2 - LEN_WORD) as usize
    }

    /// Messages committed minus messages released (a snapshot; may be stale).
    pub fn message_count(&self) -> u64 {
        let h = self.header();
        // Relaxed: a statistic, not a synchronisation point.
        let sent = h.tail.count.load(Ordering::Relaxed);
        let recv = h.head.count.load(Ordering::Relaxed);
        sent.saturating_sub(recv)
    }

    /// Bytes used (a snapshot; SeqCst loads, as the wait layer's re-check needs). 0 while
    /// `head` is ahead of `tail` (a dead producer's last record was read before its
    /// `tail` store; the next producer's attach catches `tail` up).
    pub fn used_bytes(&self) -> u64 {
        let h = self.header();
        let t = h.tail.pos.load(Ordering::SeqCst);
        let hd = h.head.pos.load(Ordering::SeqCst);
        let used = t.wrapping_sub(hd);
        if used > self.cap { 0 } else { used }
    }

    /// Whether a record (or padding) is published at the consumer's shared `head`: the
    /// length word there is nonzero. SeqCst, a plain load on x86: the sleeper's re-check
    /// in the wait protocol, paired with the producer's store of that word before its
    /// fence (docs/ring.md).
    #[inline]
    pub fn has_data(&self) -> bool {
        let head = self.header().head.pos.load(Ordering::SeqCst);
        self.len_word(self.mask(head)).load(Ordering::SeqCst) != 0
    }

    /// The length word at data offset `off` (rounded down to 8), as an atomic: the
    /// producer publishes it while the consumer polls it.
    #[inline]
    pub(super) fn len_word(&self, off: u64) -> &AtomicU64 {
        let off = (off & !7).min(self.cap - 8);
        #[cfg(not(shmkit_loom))]
        {
            // SAFETY: `off + 8 <= cap` (clamped above): the word lies in the data area.
            let p = unsafe { self.data.add(off as usize) }.cast::<AtomicU64>();
            // SAFETY: `p` is in the data area (valid for the ring's life, `Ring::new`)
            // and 8-aligned (`data` is, `off` is). Every access to a length word goes
            // through this atomic; payload bytes, accessed plainly, never overlap a word
            // while it is a live length word (the SPSC protocol).
            unsafe { &*p }
        }
        #[cfg(shmkit_loom)]
        {
            assert!(!self.words.is_null(), "loom models use HeapRing");
            // SAFETY: `HeapRing` allocates `cap / 8` words, alive as long as the ring.
            unsafe { &*self.words.add((off / 8) as usize) }
        }
    }

    #[inline]
    pub(super) fn mask(&self, pos: u64) -> u64 {
        pos & (self.cap - 1)
    }
}

/// The producing role: sole writer of `tail`.
#[derive(Debug)]
pub struct ProducerCore {
    pub(super) ring: Ring,
    /// Our own position (we are its only writer; may run ahead of the shared `tail`
    /// by deferred commits until [`publish`](Self::publish)).
    pub(super) tail: u64,
    /// Last `head` we loaded.
    head_cache: u64,
    /// Messages committed (local copy of `tail.count`).
    pub(super) sent: u64,
}

impl ProducerCore {
    /// Take the producing role, loading and validating both positions, and catching
    /// `tail` up with records a predecessor published but did not count in it (it died
    /// between the two stores; see the module docs).
    pub fn attach(ring: Ring) -> Result<Self, RawError> {
        Self::attach_walk(ring, false).map(|(core, _)| core)
    }

    /// [`attach`](Self::attach) for bare records, or (`framed`) for the records of a
    /// `Queue` ([`super::packed`]): there the walk stops at a record still open for
    /// appending and returns it as `(position, len)` (its end is the core's tail), and
    /// the shared `tail` is left at the open record's start.
    pub(super) fn attach_walk(
        ring: Ring,
        framed: bool,
    ) -> Result<(Self, Option<(u64, u64)>), RawError> {
        use super::packed::{CLOSED, FRAMES};
        let h = ring.header();
        // Acquire: pairs with a previous producer's Release (a reopened ring).
        let shared_tail = h.tail.pos.load(Ordering::Acquire);
        let mut tail = shared_tail;
        let head = h.head.pos.load(Ordering::Acquire);
        let sent = h.tail.count.load(Ordering::Relaxed);
        if !tail.is_multiple_of(8) || !head.is_multiple_of(8) {
            return Err(RawError::Corrupted(format!(
                "positions not 8-aligned: head {head}, tail {tail}"
            )));
        }
        // The consumer may already have read past `tail`: records published but not
        // counted in it. Start from there.
        let behind = head.wrapping_sub(tail);
        if behind != 0 && behind <= ring.cap {
            tail = head;
        }
        // Invariant restored: 0 <= tail - head <= capacity - 8 (a committed record always
        // leaves the next length word free).
        if tail.wrapping_sub(head) > ring.cap - LEN_WORD {
            return Err(RawError::Corrupted(format!(
                "positions out of range: head {head}, tail {tail}, capacity {}",
                ring.cap
            )));
        }
        let mut open = None;
        loop {
            let off = ring.mask(tail);
            // Acquire, paired with the Release that published it: the record is whole.
            let word = ring.len_word(off).load(Ordering::Acquire);
            // Framed rings: a record's kind bits (an open record ends the walk).
            let kind = if framed { word & (FRAMES | CLOSED) } else { 0 };
            let len = word & !PUBLISHED & !kind;
            let step = match word {
                0 => break,
                PADDING if off != 0 => ring.cap - off,
                w if w & PUBLISHED != 0 && kind != CLOSED && len <= ring.max_message() as u64 => {
                    if kind == FRAMES {
                        open = Some((tail, len));
                    }
                    record_len(len)
                }
                w => {
                    return Err(RawError::Corrupted(format!(
                        "length word {w:#x} at offset {off} is no record (attaching at tail {tail})"
                    )));
                }
            };
            // Invariant restored: the record fits before the end and below head + cap,
            // leaving the next length word free.
            if (word != PADDING && step > ring.cap - off)
                || tail.wrapping_add(step).wrapping_sub(head) > ring.cap - LEN_WORD
            {
                return Err(RawError::Corrupted(format!(
                    "record of {step} bytes at offset {off} runs past the ring (head {head})"
                )));
            }
            tail = tail.wrapping_add(step);
            if open.is_some() {
                // Its end holds whatever a predecessor appended and never committed.
                break;
            }
        }
        let shared = open.map_or(tail, |(pos, _)| pos);
        if shared != shared_tail {
            // SYNC: Release, as in `publish`.
            h.tail.pos.store(shared, Ordering::Release);
        }
        let core = ProducerCore {
            ring,
            tail,
            head_cache: head,
            sent,
        };
        Ok((core, open))
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// This core's private state, to [`resume`](Self::resume) it later without
    /// touching the shared lines (producers that take turns under a lock park their
    /// core between turns). Deferred commits must have been published.
    pub fn park(&self) -> Parked {
        Parked {
            pos: self.tail,
            other: self.head_cache,
            count: self.sent,
        }
    }

    /// Take the producing role again from a [`park`](Self::park)ed state. Sound only
    /// if nobody else produced since (the caller knows; a lock turn marker, say): the
    /// state is checked for consistency but not against the shared positions.
    pub fn resume(ring: Ring, p: Parked) -> Result<Self, RawError> {
        // Invariant restored: 0 <= tail - head <= capacity, both 8-aligned.
        if p.pos.wrapping_sub(p.other) > ring.cap
            || !p.pos.is_multiple_of(8)
            || !p.other.is_multiple_of(8)
        {
            return Err(RawError::Corrupted(format!(
                "parked producer out of range: tail {}, head {}, capacity {}",
                p.pos, p.other, ring.cap
            )));
        }
        Ok(ProducerCore {
            ring,
            tail: p.pos,
            head_cache: p.other,
            sent: p.count,
        })
    }

    #[inline]
    fn refresh_head(&mut self) -> Result<(), RawError> {
        // SYNC: Acquire, paired with the consumer's Release store of `head` in
        // `ConsumerCore::publish`: the consumer is done reading the bytes we will reuse.
        let head = self.ring.header().head.pos.load(Ordering::Acquire);
        // Invariant restored: head only moves forward and never passes our tail.
        if self.tail.wrapping_sub(head) > self.ring.cap
            || head.wrapping_sub(self.head_cache) > self.ring.cap
            || !head.is_multiple_of(8)
        {
            return Err(RawError::Corrupted(format!(
                "head {head} out of range (tail {}, last head {}, capacity {})",
                self.tail, self.head_cache, self.ring.cap
            )));
        }
        self.head_cache = head;
        Ok(())
    }

    #[inline]
    fn free(&self) -> u64 {
        self.ring.cap - self.tail.wrapping_sub(self.head_cache)
    }

    /// Ensure `need` free bytes, reloading `head` only if the cache says no.
    #[inline]
    pub(super) fn ensure(&mut self, need: u64) -> Result<bool, RawError> {
        if self.free() >= need {
            return Ok(true);
        }
        self.refresh_head()?;
        Ok(self.free() >= need)
    }

    /// Whether a message of `len` bytes could be reserved now.
    #[inline]
    pub fn can_reserve(&mut self, len: usize) -> Result<bool, RawError> {
        if len > self.ring.max_message() {
            return Ok(false);
        }
        let rec = record_len(len as u64);
        let contig = self.ring.cap - self.ring.mask(self.tail);
        let need = LEN_WORD + if rec <= contig { rec } else { contig + rec };
        // A record that needs padding may need the consumer to drain first; report
        // "not now" rather than publishing padding from a query.
        self.ensure(need.min(self.ring.cap))
    }

    /// Reserve room for a message of exactly `len` bytes: [`RawError::Full`] if there is
    /// no room now, [`RawError::TooLarge`] if there never will be.
    #[inline(always)]
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_>, RawError> {
        let room = self.find_room(len)?;
        Ok(self.grant(room))
    }

    /// The room `reserve` hands out, without borrowing the core: a caller that waits
    /// when there is none looks once, not twice (`can_reserve` then `reserve`), and
    /// then turns it into a grant with [`grant`](Self::grant).
    #[inline(always)]
    pub(crate) fn find_room(&mut self, len: usize) -> Result<Room, RawError> {
        let max = self.ring.max_message();
        if len > max {
            return Err(RawError::TooLarge { len, max });
        }
        let rec = record_len(len as u64);
        loop {
            let off = self.ring.mask(self.tail);
            let contig = self.ring.cap - off;
            if rec <= contig {
                if !self.ensure(rec + LEN_WORD)? {
                    return Err(RawError::Full);
                }
                return Ok(Room { off, len });
            }
            // The record would cross the end: pad to the end, publish the padding on its
            // own (so a message as large as the whole ring fits once the consumer has
            // skipped it), and start again at offset 0.
            if !self.ensure(contig + LEN_WORD)? {
                return Err(RawError::Full);
            }
            // The word at offset 0 (the next record's) is free (`ensure`): zero it, then
            // publish the padding. Relaxed: ordered before the consumer's Acquire of the
            // padding by the Release below.
            self.ring.len_word(0).store(0, Ordering::Relaxed);
            // SYNC: Release, paired with the consumer's Acquire of the length word.
            self.ring.len_word(off).store(PADDING, Ordering::Release);
            self.tail = self.tail.wrapping_add(contig);
            self.publish();
        }
    }

    /// The grant for the room this core's last [`find_room`](Self::find_room) found
    /// (nothing reserved or published since: the room is still free and ours).
    #[inline(always)]
    pub(crate) fn grant(&mut self, room: Room) -> WriteGrant<'_> {
        debug_assert_eq!(room.off, self.ring.mask(self.tail), "a stale room");
        WriteGrant {
            off: room.off,
            len: room.len,
            prod: self,
        }
    }

    /// Copy `msg` in as one message and publish it.
    #[inline(always)]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), RawError> {
        let mut g = self.reserve(msg.len())?;
        super::copy_bytes(msg, g.as_mut_slice());
        g.commit();
        Ok(())
    }

    /// Copy in as many of `msgs` as fit, in order, and publish them with one store.
    /// Returns how many were sent; stops at the first that does not fit now
    /// (`TooLarge` if the first one can never fit).
    pub fn try_send_batch<M: AsRef<[u8]>>(&mut self, msgs: &[M]) -> Result<usize, RawError> {
        let mut n = 0;
        for m in msgs {
            let m = m.as_ref();
            match self.reserve(m.len()) {
                Ok(mut g) => {
                    super::copy_bytes(m, g.as_mut_slice());
                    g.commit_deferred();
                    n += 1;
                }
                Err(RawError::Full) => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        self.publish();
        Ok(n)
    }

    /// Store our position in the shared `tail` (the records are visible already: each
    /// length word is its record's publication).
    #[inline]
    pub fn publish(&mut self) {
        // SYNC: Release, paired with the Acquire in a successor's `attach` and in
        // `Ring::used_bytes`' readers: the records below `tail` are whole.
        self.ring
            .header()
            .tail
            .pos
            .store(self.tail, Ordering::Release);
    }
}

/// Free room for one record at the producer's tail, found by
/// [`ProducerCore::find_room`]: its length word's data offset (checked to leave the
/// record and the next length word inside the data area) and the message length. Not
/// `Clone`: one room, one grant.
#[derive(Debug)]
pub(crate) struct Room {
    off: u64,
    len: usize,
}

/// Room for one message, reserved by [`ProducerCore::reserve`]. Dropping it without
/// committing abandons the reservation (nothing is published).
#[derive(Debug)]
pub struct WriteGrant<'a> {
    prod: &'a mut ProducerCore,
    off: u64,
    len: usize,
}

impl<'a> WriteGrant<'a> {
    /// The reserved bytes (exactly the requested length; contents unspecified).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `find_room` checked `off + 8 + align8(len) <= cap`: in the data area.
        let p = unsafe { self.prod.ring.data.add((self.off + LEN_WORD) as usize) };
        // SAFETY: the `len` bytes at `p` are in the data area and free (the consumer
        // released them), and only this producer touches them until it publishes them.
        unsafe { core::slice::from_raw_parts_mut(p, self.len) }
    }

    /// Length of the reservation.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the reservation is zero bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write the length word and advance our private tail, without publishing.
    #[inline]
    pub fn commit_deferred(self) {
        self.finish();
    }

    /// Publish the message.
    #[inline]
    pub fn commit(self) {
        // The grant's own `&mut ProducerCore` is handed back, so no second path to the
        // core exists (a raw pointer kept across `commit_deferred` broke Stacked Borrows:
        // Miri, docs/reliability-tooling.md).
        self.finish().publish();
    }

    /// Publish the record (its length word) and advance our private tail, without
    /// storing the shared `tail`.
    #[inline]
    fn finish(self) -> &'a mut ProducerCore {
        let prod = self.prod;
        prod.finish_record(self.off, self.len as u64, 0);
        prod
    }

    /// Data offset of the record's length word.
    pub(super) fn offset(&self) -> u64 {
        self.off
    }
}

impl ProducerCore {
    /// Publish the record of `len` bytes at data offset `off` (its bytes written) at our
    /// private tail, its length word carrying the kind bits `kind` (0 for a bare
    /// record), and advance the private tail past it; the shared `tail` is not stored.
    #[inline]
    pub(super) fn finish_record(&mut self, off: u64, len: u64, kind: u64) {
        let prod = self;
        let ring = prod.ring;
        let next = prod.tail.wrapping_add(record_len(len));
        // Wrapping: `sent` started from a counter in shared memory, which a peer may
        // have set to anything (overflow must not panic in debug builds).
        prod.sent = prod.sent.wrapping_add(1);
        // The count first: a consumer that takes this message and calls `task_done`
        // (Queue) must find it counted. Relaxed: ordered by the Release below.
        ring.header().tail.count.store(prod.sent, Ordering::Relaxed);
        // The next record's length word is free (`reserve` ensured the record plus one
        // word): zero it, so the consumer finds "nothing yet" there. Relaxed: ordered
        // before the consumer's Acquire of our length word by the Release below.
        ring.len_word(ring.mask(next)).store(0, Ordering::Relaxed);
        // SYNC: Release, paired with the consumer's Acquire of the length word in
        // `ConsumerCore::next` (and the sleeper's SeqCst re-check in `Ring::has_data`):
        // the payload bytes and the zeroed next word are visible before the record.
        ring.len_word(off)
            .store(PUBLISHED | kind | len, Ordering::Release);
        prod.tail = next;
    }
}

/// A core's private state between two turns ([`ProducerCore::park`],
/// [`ConsumerCore::park`]): our own position, the last position of the other side we
/// loaded, and our message count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Parked {
    /// Our position (`tail` for a producer, `head` for a consumer).
    pub pos: u64,
    /// The other side's position as last loaded.
    pub other: u64,
    /// Messages sent (producer) or received (consumer).
    pub count: u64,
}

/// The consuming role: sole writer of `head`.
#[derive(Debug)]
pub struct ConsumerCore {
    pub(super) ring: Ring,
    pub(super) head: u64,
    pub(super) received: u64,
}

impl ConsumerCore {
    /// Take the consuming role, loading and validating `head`.
    pub fn attach(ring: Ring) -> Result<Self, RawError> {
        let h = ring.header();
        let head = h.head.pos.load(Ordering::Acquire);
        let received = h.head.count.load(Ordering::Relaxed);
        if !head.is_multiple_of(8) {
            return Err(RawError::Corrupted(format!("head {head} not 8-aligned")));
        }
        Ok(ConsumerCore {
            ring,
            head,
            received,
        })
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Our read position (private copy; moves on every release, deferred or not).
    pub fn position(&self) -> u64 {
        self.head
    }

    /// This core's private state; see [`ProducerCore::park`]. Deferred releases must
    /// have been published. (`other` is unused: the consumer never needs `tail`.)
    pub fn park(&self) -> Parked {
        Parked {
            pos: self.head,
            other: self.head,
            count: self.received,
        }
    }

    /// Take the consuming role again from a [`park`](Self::park)ed state; see
    /// [`ProducerCore::resume`].
    pub fn resume(ring: Ring, p: Parked) -> Result<Self, RawError> {
        if !p.pos.is_multiple_of(8) {
            return Err(RawError::Corrupted(format!(
                "parked consumer out of range: head {} not 8-aligned",
                p.pos
            )));
        }
        Ok(ConsumerCore {
            ring,
            head: p.pos,
            received: p.count,
        })
    }

    /// Locate the next record: `(offset of payload, len)`, skipping padding.
    #[inline(always)]
    fn next(&mut self) -> Result<Option<(u64, usize)>, RawError> {
        loop {
            let off = self.ring.mask(self.head);
            // SYNC: Acquire, paired with the producer's Release store of this length
            // word in `WriteGrant::finish` (or of the padding marker in `reserve`): the
            // record's bytes, and the zeroed word after it, are visible.
            let word = self.ring.len_word(off).load(Ordering::Acquire);
            let contig = self.ring.cap - off;
            match word {
                0 => return Ok(None),
                // Invariant restored: padding never starts at offset 0 (any record fits
                // there), so a call skips padding at most once and always terminates.
                PADDING if off == 0 => {
                    return Err(RawError::Corrupted(
                        "padding marker at offset 0 (a record always fits there)".into(),
                    ));
                }
                PADDING => {
                    self.head = self.head.wrapping_add(contig);
                    self.publish();
                    continue;
                }
                _ => {}
            }
            let len = word & !PUBLISHED;
            // Invariant restored: a published record whose bytes fit in the data area
            // without crossing its end.
            if word & PUBLISHED == 0
                || len > self.ring.max_message() as u64
                || record_len(len) > contig
            {
                return Err(RawError::Corrupted(format!(
                    "length word {word:#x} at offset {off} is no record \
                     (capacity {}, contiguous {contig})",
                    self.ring.cap
                )));
            }
            return Ok(Some((off + LEN_WORD, len as usize)));
        }
    }

    /// The next message, in place, or `None` if the ring is empty.
    #[inline(always)]
    pub fn read(&mut self) -> Result<Option<ReadGrant<'_>>, RawError> {
        Ok(self.locate()?.map(|at| self.grant(at)))
    }

    /// Where the next message is (skipping padding), without borrowing the core: a
    /// caller that waits when there is none looks at the record once, then turns it
    /// into a grant with [`grant`](Self::grant).
    #[inline(always)]
    pub(crate) fn locate(&mut self) -> Result<Option<Located>, RawError> {
        Ok(self.next()?.map(|(off, len)| Located { off, len }))
    }

    /// The grant for the message this core's last [`locate`](Self::locate) found
    /// (nothing released since: the record is still there and unread).
    #[inline(always)]
    pub(crate) fn grant(&mut self, at: Located) -> ReadGrant<'_> {
        debug_assert_eq!(
            at.off,
            self.ring.mask(self.head) + LEN_WORD,
            "a stale record"
        );
        ReadGrant {
            cons: self,
            off: at.off,
            len: at.len,
        }
    }

    /// Copy the next message into `out` (cleared first): `Err(Empty)` if none.
    #[inline]
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<(), RawError> {
        match self.read()? {
            Some(g) => {
                out.clear();
                out.extend_from_slice(&g);
                g.release();
                Ok(())
            }
            None => Err(RawError::Empty),
        }
    }

    /// Copy up to `max` messages, appending each to `out`, releasing them with one
    /// store. Returns how many were received.
    pub fn try_recv_batch(
        &mut self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
    ) -> Result<usize, RawError> {
        self.read_batch(max, |m| out.push(m.to_vec()))
    }

    /// Call `f` on up to `max` messages in place, then release them all with one store.
    /// Returns how many.
    pub fn read_batch(&mut self, max: usize, mut f: impl FnMut(&[u8])) -> Result<usize, RawError> {
        let mut n = 0;
        while n < max {
            match self.read()? {
                Some(g) => {
                    f(&g);
                    g.release_deferred();
                    n += 1;
                }
                None => break,
            }
        }
        if n > 0 {
            self.publish();
        }
        Ok(n)
    }

    /// Publish every deferred release.
    #[inline]
    pub fn publish(&mut self) {
        let h = self.ring.header();
        h.head.count.store(self.received, Ordering::Relaxed);
        // SYNC: Release, paired with the producer's Acquire load of `head` in
        // `ProducerCore::refresh_head`: our reads of the released bytes happen before
        // the producer overwrites them.
        h.head.pos.store(self.head, Ordering::Release);
    }
}

/// A published record at the consumer's head, found by [`ConsumerCore::locate`]: its
/// payload's data offset and length, both validated against the data area. Not
/// `Clone`: one record, one grant.
#[derive(Debug)]
pub(crate) struct Located {
    off: u64,
    len: usize,
}

/// One message, in place in the ring, from [`ConsumerCore::read`]. Dropping it without
/// [`release`](Self::release) leaves the message in the ring.
#[derive(Debug)]
pub struct ReadGrant<'a> {
    cons: &'a mut ConsumerCore,
    off: u64,
    len: usize,
}

impl<'a> ReadGrant<'a> {
    /// The message bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `next` checked `off - 8 + record_len(len) <= cap`: in the data area.
        let p = unsafe { self.cons.ring.data.add(self.off as usize) };
        // SAFETY: the record was published (its length word Acquired), so these `len`
        // bytes are fully written, and the producer will not touch them until we
        // release them.
        unsafe { core::slice::from_raw_parts(p, self.len) }
    }

    /// Consume the message without publishing the new `head` yet.
    #[inline]
    pub fn release_deferred(self) {
        self.finish();
    }

    /// Consume the message and give its bytes back to the producer.
    #[inline]
    pub fn release(self) {
        // As in `WriteGrant::commit`: reuse the grant's own borrow, no raw pointer.
        self.finish().publish();
    }

    /// Release without publishing and give back the core the grant borrowed.
    #[inline]
    fn finish(self) -> &'a mut ConsumerCore {
        let cons = self.cons;
        cons.head = cons.head.wrapping_add(record_len(self.len as u64));
        // Wrapping, as `sent` in `WriteGrant::finish`: it started from shared memory.
        cons.received = cons.received.wrapping_add(1);
        cons
    }
}

impl core::ops::Deref for ReadGrant<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// A heap-allocated ring for tests, loom models and Miri.
#[derive(Debug)]
pub struct HeapRing {
    hdr: Box<SpscHeader>,
    /// The data area, from `Box::into_raw` (freed in `Drop`). Kept as a raw pointer so
    /// the rings made from it and [`corrupt_word`](Self::corrupt_word) all derive from
    /// one pointer: a `Box` asserts uniqueness on each use, which Miri reports as
    /// invalidating the rings' pointer (docs/reliability-tooling.md).
    data: *mut [u64],
    /// Under loom: the length words, as loom atomics (see `Ring::len_word`).
    #[cfg(shmkit_loom)]
    words: Box<[AtomicU64]>,
}

// SAFETY: `HeapRing` owns its allocations (the raw `data` pointer included) like a `Box`
// does; moving it to another thread moves that ownership.
unsafe impl Send for HeapRing {}
// SAFETY: `&HeapRing` gives access only to atomics (`corrupt_tail`) and to `Ring`s, which
// are `Sync` themselves; the data bytes are written only through `&mut self`.
unsafe impl Sync for HeapRing {}

impl HeapRing {
    /// A ring with a data area of `capacity` bytes (power of two, >= 16).
    pub fn new(capacity: u64) -> Self {
        assert!(
            valid_capacity(capacity),
            "capacity must be a power of two >= 16"
        );
        HeapRing {
            hdr: Box::new(SpscHeader::new(capacity)),
            data: Box::into_raw(vec![0u64; (capacity / 8) as usize].into_boxed_slice()),
            #[cfg(shmkit_loom)]
            words: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The ring over this buffer.
    ///
    /// # Safety
    /// The `HeapRing` must outlive every role made from the returned ring.
    pub unsafe fn ring(&mut self) -> Ring {
        let cap = (self.data.len() * 8) as u64;
        #[allow(unused_mut)]
        // SAFETY: header and data are owned by `self`, which the caller keeps alive;
        // the data is a `u64` slice, hence 8-aligned, of `cap` bytes.
        let mut ring = unsafe { Ring::new(&*self.hdr, self.data.cast(), cap) };
        #[cfg(shmkit_loom)]
        {
            ring.words = self.words.as_ptr();
        }
        ring
    }

    /// Overwrite a shared position (tests of corruption handling).
    #[cfg(feature = "internals")]
    pub fn corrupt_tail(&self, value: u64) {
        self.hdr.tail.pos.store(value, Ordering::Relaxed);
    }

    /// Overwrite the length word at byte `offset` of the data area (corruption tests).
    #[cfg(feature = "internals")]
    pub fn corrupt_word(&mut self, offset: usize, value: u64) {
        assert!(offset / 8 < self.data.len(), "offset outside the data area");
        // SAFETY: the index is in bounds (asserted) of the allocation `self` owns; the
        // write goes through the same pointer the rings use, while no role is inside
        // a read or write of these bytes (the tests call this between operations).
        let p = unsafe { self.data.cast::<u64>().add(offset / 8) };
        // SAFETY: `p` is in bounds (above) and 8-aligned (a `u64` slice).
        unsafe { p.write(value) };
    }
}

impl Drop for HeapRing {
    fn drop(&mut self) {
        // SAFETY: `data` came from `Box::into_raw` in `new` and is freed only here.
        drop(unsafe { Box::from_raw(self.data) });
    }
}
