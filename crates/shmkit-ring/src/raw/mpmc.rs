//! The multi-producer multi-consumer queue of fixed-size slots (Vyukov's bounded
//! queue: one sequence number per slot) with a dead-producer unblocker.
//!
//! Slot `i` starts with sequence `i`. A producer at position `p` may write slot
//! `p & mask` when its sequence is `p`; it claims `p` by a CAS of `tail` from `p` to
//! `p + 1`, writes the payload, and publishes by storing sequence `p + 1` (Release). A
//! consumer at position `p` may read when the sequence is `p + 1`; it claims by a CAS of
//! `head`, reads, and frees the slot for the next lap by storing `p + capacity`.
//!
//! # The unblocker
//! A producer that dies between its CAS and its publishing store leaves a slot whose
//! sequence never advances: every consumer would wait on it forever. So each producer
//! owns an entry of a *producer table* (its index is the producer's liveness slot,
//! whose lock the kernel releases when the process dies). Before the CAS the producer
//! stores its *intent* (`p + 1`; 0 = none) in its entry, updates it when the CAS fails,
//! and clears it only after publishing. A consumer stuck at `p` while `tail > p` calls
//! [`Mpmc::try_unblock`]: if no live producer's intent is `p + 1` and a dead one's is,
//! the claimant of `p` is dead (the claimant's intent was `p + 1` when its CAS moved
//! `tail` past `p`, and stays so until it publishes, which would have advanced the
//! sequence). The consumer then claims `p` itself, frees the slot without reading it
//! and counts it in `abandoned`.

use super::RawError;
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

use shmkit_sync::wake::WakeWord;

/// Largest number of producer-table entries.
pub const MAX_PRODUCERS: u32 = 64;

/// Read-mostly line of the MPMC header.
#[repr(C)]
#[derive(Debug)]
pub struct MpmcMeta {
    /// Number of slots (power of two).
    pub capacity: AtomicU64,
    /// Payload bytes per slot (the item size).
    pub item_size: AtomicU64,
    /// Slots skipped because their producer died before publishing.
    pub abandoned: AtomicU64,
    /// Consumers sleep here waiting for items.
    pub data_wake: WakeWord,
    /// Producers sleep here waiting for space.
    pub space_wake: WakeWord,
    /// Number of producer-table entries.
    pub table_len: AtomicU32,
    /// The queue's wait strategy (`WaitStrategy` code), written once before the
    /// segment is ready.
    pub wait_strategy: AtomicU32,
}

/// The control block of an MPMC queue. In shared memory it is followed by the
/// producer table, the sequence array and the payload array.
#[repr(C)]
#[derive(Debug)]
pub struct MpmcHeader {
    /// Next position to claim for writing.
    pub tail: CachePadded<AtomicU64>,
    /// Next position to claim for reading.
    pub head: CachePadded<AtomicU64>,
    /// Read-mostly line.
    pub meta: CachePadded<MpmcMeta>,
}

/// Size of [`MpmcHeader`] in shared memory.
pub const HEADER_BYTES: usize = 384;
/// Size of one producer-table entry (one intent word on its own cache line).
pub const ENTRY_BYTES: usize = 128;

#[cfg(not(shmkit_loom))]
const _: () = {
    assert!(core::mem::size_of::<MpmcHeader>() == HEADER_BYTES);
    assert!(core::mem::size_of::<MpmcMeta>() == 48);
    assert!(core::mem::size_of::<CachePadded<AtomicU64>>() == ENTRY_BYTES);
};

/// Bytes of shared memory a queue of `capacity` slots of `item_size` bytes needs
/// (header, table, sequences, payloads), or `None` on overflow.
pub fn region_bytes(capacity: u64, item_size: usize, table_len: u32) -> Option<usize> {
    let stride = stride(item_size) as u64;
    let seqs = capacity.checked_mul(8)?;
    let payload = capacity.checked_mul(stride)?;
    let total = (HEADER_BYTES as u64)
        .checked_add(u64::from(table_len) * ENTRY_BYTES as u64)?
        .checked_add(seqs)?
        .checked_add(payload)?;
    usize::try_from(total).ok()
}

/// Whether `capacity` slots is acceptable: a power of two, at least 2 (with one slot,
/// sequence `p + 1` of a published item would equal the free mark of position `p + 1`).
pub fn valid_capacity(capacity: u64) -> bool {
    capacity.is_power_of_two() && (2..=1 << 32).contains(&capacity)
}

/// Payload stride: the item size rounded up to 8 (at least 8).
pub const fn stride(item_size: usize) -> usize {
    let s = (item_size + 7) & !7;
    if s == 0 { 8 } else { s }
}

impl MpmcHeader {
    /// A fresh header (heap queues, loom models).
    pub fn new(capacity: u64, item_size: usize, table_len: u32) -> Self {
        MpmcHeader {
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            meta: CachePadded::new(MpmcMeta {
                capacity: AtomicU64::new(capacity),
                item_size: AtomicU64::new(item_size as u64),
                abandoned: AtomicU64::new(0),
                data_wake: WakeWord::new(),
                space_wake: WakeWord::new(),
                table_len: AtomicU32::new(table_len),
                wait_strategy: AtomicU32::new(0),
            }),
        }
    }
}

/// An MPMC queue over a region. Copyable; all state is in the region.
#[derive(Debug, Clone, Copy)]
pub struct Mpmc {
    hdr: *const MpmcHeader,
    table: *const CachePadded<AtomicU64>,
    table_len: u32,
    seqs: *const AtomicU64,
    payload: *mut u8,
    cap: u64,
    item: usize,
}

// SAFETY: pointers into memory `Mpmc::new`'s caller keeps valid; shared state behind
// them is atomics, and payload bytes are handed out under the sequence protocol.
unsafe impl Send for Mpmc {}
// SAFETY: as above.
unsafe impl Sync for Mpmc {}

impl Mpmc {
    /// # Safety
    /// `hdr` points to an initialised header, `table` to `table_len` entries, `seqs` to
    /// `cap` sequence words, `payload` to `cap * stride(item)` bytes (8-aligned); all
    /// valid while this value or a copy is used. `cap` is a power of two and `item`,
    /// `table_len` the values the queue was built with, checked by the caller against
    /// its own mapping size (not merely read from the header).
    pub unsafe fn new(
        hdr: *const MpmcHeader,
        table: *const CachePadded<AtomicU64>,
        table_len: u32,
        seqs: *const AtomicU64,
        payload: *mut u8,
        cap: u64,
        item: usize,
    ) -> Self {
        debug_assert!(valid_capacity(cap));
        Mpmc {
            hdr,
            table,
            table_len,
            seqs,
            payload,
            cap,
            item,
        }
    }

    /// Set every slot's sequence to its index (a fresh queue, before it is shared).
    pub fn init_slots(&self) {
        for i in 0..self.cap {
            // Relaxed: published by whatever makes the queue visible (segment `ready`).
            self.seq(i).store(i, Ordering::Relaxed);
        }
        for e in 0..self.table_len {
            self.entry(e).store(0, Ordering::Relaxed);
        }
    }

    /// The header.
    pub fn header(&self) -> &MpmcHeader {
        // SAFETY: `Mpmc::new`'s contract.
        unsafe { &*self.hdr }
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.cap
    }

    /// Payload bytes per item.
    pub fn item_size(&self) -> usize {
        self.item
    }

    /// Producer-table entries.
    pub fn table_len(&self) -> u32 {
        self.table_len
    }

    /// Slots skipped because their producer died.
    pub fn abandoned(&self) -> u64 {
        self.header().meta.abandoned.load(Ordering::Relaxed)
    }

    /// Items in the queue (claimed-but-unpublished included; a snapshot).
    /// `Corrupted` if the positions are more than a capacity apart.
    pub fn len(&self) -> Result<u64, RawError> {
        let h = self.header();
        let head = h.head.load(Ordering::SeqCst);
        let tail = h.tail.load(Ordering::SeqCst);
        let d = tail.wrapping_sub(head);
        // Invariant: 0 <= tail - head <= capacity (a racing snapshot may see head past
        // tail by a little; that reads as "empty", not corruption).
        if d > self.cap && head.wrapping_sub(tail) > self.cap {
            return Err(RawError::Corrupted(format!(
                "head {head} and tail {tail} more than {} apart",
                self.cap
            )));
        }
        Ok(if d > self.cap { 0 } else { d })
    }

    /// Whether the queue holds no items (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len().map(|n| n == 0).unwrap_or(false)
    }

    #[inline]
    fn seq(&self, i: u64) -> &AtomicU64 {
        // SAFETY: the index is masked below `cap`, and `seqs` has `cap` words.
        let p = unsafe { self.seqs.add((i & (self.cap - 1)) as usize) };
        // SAFETY: `p` points to one of those words, valid while the queue is (`Mpmc::new`).
        unsafe { &*p }
    }

    #[inline]
    fn entry(&self, e: u32) -> &AtomicU64 {
        assert!(e < self.table_len, "producer entry out of range");
        // SAFETY: `e < table_len`, the table's length (checked just above).
        let p = unsafe { self.table.add(e as usize) };
        // SAFETY: `p` points to an entry of the table, valid while the queue is.
        unsafe { &*p }
    }

    #[inline]
    fn slot_ptr(&self, pos: u64) -> *mut u8 {
        let i = (pos & (self.cap - 1)) as usize;
        // SAFETY: `i < cap`, so the slot lies in the `cap * stride` payload bytes.
        unsafe { self.payload.add(i * stride(self.item)) }
    }

    /// The intent word of entry `e` (tests and inspection).
    pub fn intent(&self, e: u32) -> u64 {
        self.entry(e).load(Ordering::SeqCst)
    }

    /// Prepare entry `e` for a new owner: true if it is clean (its previous owner's
    /// intent, if any, is for a position already consumed or abandoned), false if a
    /// dead owner's intent may still be needed to unblock a slot.
    pub fn claim_entry(&self, e: u32) -> bool {
        let intent = self.entry(e).load(Ordering::SeqCst);
        if intent == 0 {
            return true;
        }
        let head = self.header().head.load(Ordering::SeqCst);
        // Position intent-1 is behind head: consumed (or abandoned) already.
        if (head.wrapping_sub(intent - 1) as i64) > 0 {
            self.entry(e).store(0, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Claim the next slot for writing, as producer-table entry `entry` (None: no
    /// table entry, e.g. a single-process queue).
    pub fn try_claim(&self, entry: Option<u32>) -> Result<Claim<'_>, RawError> {
        let h = self.header();
        let mut pos = h.tail.load(Ordering::Relaxed);
        loop {
            if let Some(e) = entry {
                // SYNC: SeqCst, before the CAS below in the single total order: a
                // consumer that sees `tail > pos` (SeqCst load in `try_unblock`) sees
                // this intent or a later value of it.
                self.entry(e).store(pos.wrapping_add(1), Ordering::SeqCst);
            }
            // SYNC: Acquire, paired with the consumer's Release store freeing the slot
            // (`Claim`'s counterpart in `try_pop`): its read of the old payload is done.
            let seq = self.seq(pos).load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos) as i64;
            if diff == 0 {
                match h.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        return Ok(Claim {
                            q: self,
                            pos,
                            entry,
                        });
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                if let Some(e) = entry {
                    self.entry(e).store(0, Ordering::SeqCst);
                }
                return Err(RawError::Full);
            } else {
                // The slot is ahead of `pos`: another producer claimed `pos` already.
                // Every store of such a sequence happens after a CAS moved `tail` past
                // `pos` (and our Acquire load saw that store), so a reload must see a
                // new `tail`. Invariant restored: if it does not, the sequence is
                // corrupt, and retrying would spin forever (found by fuzzing).
                let now = h.tail.load(Ordering::Relaxed);
                if now == pos {
                    if let Some(e) = entry {
                        self.entry(e).store(0, Ordering::SeqCst);
                    }
                    return Err(RawError::Corrupted(format!(
                        "slot sequence {seq} is ahead of tail {pos}"
                    )));
                }
                pos = now;
            }
            crate::primitive::spin_hint();
        }
    }

    /// Copy `item` (exactly `item_size` bytes) in and publish it.
    pub fn try_push(&self, entry: Option<u32>, item: &[u8]) -> Result<(), RawError> {
        assert_eq!(item.len(), self.item, "item size mismatch");
        let mut c = self.try_claim(entry)?;
        super::copy_bytes(item, c.as_mut_slice());
        c.publish();
        Ok(())
    }

    /// Claim and copy out the next item into `out` (exactly `item_size` bytes):
    /// `Err(Empty)` if none is published at the head now.
    pub fn try_pop(&self, out: &mut [u8]) -> Result<(), RawError> {
        assert_eq!(out.len(), self.item, "item size mismatch");
        let h = self.header();
        let mut pos = h.head.load(Ordering::Relaxed);
        loop {
            // SYNC: Acquire, paired with the producer's Release in `Claim::publish`.
            let seq = self.seq(pos).load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos.wrapping_add(1)) as i64;
            if diff == 0 {
                match h.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                return Err(RawError::Empty);
            } else {
                // Another consumer took `pos` already; as in `try_claim`, a sequence this
                // far ahead was stored after a CAS moved `head` past `pos`, so an
                // unchanged `head` means a corrupt sequence, not a race (found by fuzzing).
                let now = h.head.load(Ordering::Relaxed);
                if now == pos {
                    return Err(RawError::Corrupted(format!(
                        "slot sequence {seq} is ahead of head {pos}"
                    )));
                }
                pos = now;
            }
            crate::primitive::spin_hint();
        }
        // SAFETY: the slot lies in the payload area (masked index); its sequence said
        // "published for position pos" and we own `pos` by the CAS, so no producer
        // writes it until we free it below.
        unsafe { core::ptr::copy_nonoverlapping(self.slot_ptr(pos), out.as_mut_ptr(), self.item) };
        // SYNC: Release, paired with the Acquire in `try_claim`: our read is done before
        // a producer of the next lap writes the slot.
        self.seq(pos)
            .store(pos.wrapping_add(self.cap), Ordering::Release);
        Ok(())
    }

    /// If the head slot is claimed but unpublished and its claimant is dead (see the
    /// module docs), skip it: returns true if a slot was abandoned. `is_alive(e)` says
    /// whether producer-table entry `e`'s owner lives.
    pub fn try_unblock(&self, is_alive: impl Fn(u32) -> bool) -> bool {
        let h = self.header();
        let pos = h.head.load(Ordering::SeqCst);
        let tail = h.tail.load(Ordering::SeqCst);
        let claimed = tail.wrapping_sub(pos);
        if claimed == 0 || claimed > self.cap {
            return false;
        }
        if self.seq(pos).load(Ordering::Acquire) != pos {
            return false; // published (or consumed) meanwhile
        }
        let want = pos.wrapping_add(1);
        let mut dead = None;
        for e in 0..self.table_len {
            // SeqCst: see the SYNC note in `try_claim`.
            if self.entry(e).load(Ordering::SeqCst) == want {
                if is_alive(e) {
                    return false;
                }
                dead = Some(e);
            }
        }
        let Some(dead) = dead else { return false };
        // A publish between our first check and the scan clears the intent only after
        // the sequence store (Release then SeqCst), so re-checking here is enough.
        if self.seq(pos).load(Ordering::Acquire) != pos {
            return false;
        }
        if h.head
            .compare_exchange(pos, want, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SYNC: Release, as in `try_pop`: free the slot for the next lap.
        self.seq(pos)
            .store(pos.wrapping_add(self.cap), Ordering::Release);
        h.meta.abandoned.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .entry(dead)
            .compare_exchange(want, 0, Ordering::SeqCst, Ordering::Relaxed);
        true
    }

    /// Whether an item may be ready at the head (wait layer; SeqCst for the sleep
    /// protocol).
    pub fn has_data(&self) -> bool {
        let h = self.header();
        h.tail.load(Ordering::SeqCst) != h.head.load(Ordering::SeqCst)
    }

    /// Whether a slot may be free at the tail.
    pub fn has_space(&self) -> bool {
        let h = self.header();
        let tail = h.tail.load(Ordering::SeqCst);
        let head = h.head.load(Ordering::SeqCst);
        tail.wrapping_sub(head) < self.cap
    }
}

/// A claimed, unpublished slot. Dropping it without [`publish`](Self::publish) leaves
/// the slot blocked until a consumer's unblocker skips it (as if the producer died).
#[derive(Debug)]
pub struct Claim<'a> {
    q: &'a Mpmc,
    pos: u64,
    entry: Option<u32>,
}

impl Claim<'_> {
    /// The slot's payload bytes (`item_size` long).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the slot is in the payload area (masked index) and we own it: our CAS
        // claimed `pos`, and consumers read it only after `publish`.
        unsafe { core::slice::from_raw_parts_mut(self.q.slot_ptr(self.pos), self.q.item) }
    }

    /// The claimed position.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Publish the slot, then clear our intent.
    pub fn publish(self) {
        // SYNC: Release, paired with the consumer's Acquire in `try_pop`: the payload
        // written above is visible before the sequence says it is.
        self.q
            .seq(self.pos)
            .store(self.pos.wrapping_add(1), Ordering::Release);
        if let Some(e) = self.entry {
            // SYNC: SeqCst (after the Release above): an unblocker that sees the cleared
            // intent also sees the published sequence and leaves the slot alone.
            self.q.entry(e).store(0, Ordering::SeqCst);
        }
    }
}

/// A heap-allocated queue for tests, loom models and Miri.
#[derive(Debug)]
pub struct HeapMpmc {
    hdr: Box<MpmcHeader>,
    table: Box<[CachePadded<AtomicU64>]>,
    seqs: Box<[AtomicU64]>,
    payload: Box<[u64]>,
}

impl HeapMpmc {
    /// A queue of `capacity` slots (power of two) of `item_size` bytes, with a producer
    /// table of `table_len` entries.
    pub fn new(capacity: u64, item_size: usize, table_len: u32) -> Self {
        assert!(
            valid_capacity(capacity),
            "capacity must be a power of two >= 2"
        );
        HeapMpmc {
            hdr: Box::new(MpmcHeader::new(capacity, item_size, table_len)),
            table: (0..table_len)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            seqs: (0..capacity).map(AtomicU64::new).collect(),
            payload: vec![0u64; capacity as usize * stride(item_size) / 8].into_boxed_slice(),
        }
    }

    /// The queue over this buffer.
    ///
    /// # Safety
    /// The `HeapMpmc` must outlive every use of the returned value.
    pub unsafe fn queue(&mut self) -> Mpmc {
        let cap = self.seqs.len() as u64;
        let item = self.hdr.meta.item_size.load(Ordering::Relaxed) as usize;
        // SAFETY: every array is owned by `self` (kept alive by the caller) and sized
        // as `Mpmc::new` requires; the payload is a `u64` slice, hence 8-aligned.
        unsafe {
            Mpmc::new(
                &*self.hdr,
                self.table.as_ptr(),
                self.table.len() as u32,
                self.seqs.as_ptr(),
                self.payload.as_mut_ptr().cast(),
                cap,
                item,
            )
        }
    }
}
