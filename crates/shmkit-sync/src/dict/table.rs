//! One generation of a dict's storage: an open-addressing slot table and an append-only
//! record heap in one segment. The non-blocking core every reader runs.
//!
//! ## Layout of a table segment's payload
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 128 | [`TableHeader`]: magic, generation, geometry, counters |
//! | 128 | 8 × `slots` | slot words (`slots` a power of two) |
//! | 128 + 8 × `slots` | `heap_bytes` | records, 8-byte aligned, appended |
//!
//! ## A slot word (64 bits)
//!
//! | value | meaning |
//! |---|---|
//! | 0 | empty: ends a probe |
//! | 1 | tombstone: a removed entry; probes go on past it |
//! | bits 63..40 | tag: the top 24 bits of the key's hash |
//! | bits 39..0 | the record's heap offset / 8 (≥ 2: heap bytes 0..16 hold no record) |
//!
//! ## A record
//!
//! `[hash: u64][key_len: u32][value_len: u32][key bytes][value bytes]`, padded to 8.
//!
//! ## Why readers need no lock and never retry
//!
//! A record is never written again once a slot points at it: an insert appends a new
//! record and then stores the slot word (Release); a remove stores a tombstone. A reader
//! loads the slot word (Acquire) and reads a record that is whole and stays whole for
//! the life of this generation. Space is reclaimed only by copying the live records into
//! the next generation (growth), which readers move to when they see the control
//! segment's generation change; a reader still on the old one reads the old, still
//! mapped, unchanged records. Writers are serialised by the dict's robust lock.
//!
//! Every number read from the segment is checked before it addresses memory (DESIGN
//! rule 2): the geometry once, when the table is mapped (then kept in this process),
//! record offsets and lengths at each read.

use shmkit_segment::{Kind, Segment};

use crate::primitive::{AtomicU64, Ordering};
use crate::{Error, Result};

/// "SHMDICT1".
pub(crate) const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"SHMDICT1");
/// Bytes of [`TableHeader`].
pub(crate) const HEADER: u64 = 128;
/// Slot word of an empty slot.
pub(crate) const EMPTY: u64 = 0;
/// Slot word of a removed entry.
pub(crate) const TOMBSTONE: u64 = 1;
const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// Heap offset of the first record (offsets 0..16 would make slot words 0 and 1).
pub(crate) const HEAP_START: u64 = 16;
/// Bytes of a record's fixed part (hash, key length, value length).
pub(crate) const RECORD_HEADER: u64 = 16;
/// Fewest slots a table has.
pub(crate) const MIN_SLOTS: u64 = 16;
/// Most slots a table may have (8 × 2^36 bytes of slot words = 512 GiB).
pub(crate) const MAX_SLOTS: u64 = 1 << 36;
/// Largest heap a slot word can address.
pub(crate) const MAX_HEAP: u64 = OFFSET_MASK * 8;

/// The table segment's header. Geometry fields are written once, before the generation
/// is published; the counters only under the dict's lock.
#[repr(C)]
pub(crate) struct TableHeader {
    magic: AtomicU64,
    generation: AtomicU64,
    slots: AtomicU64,
    heap_bytes: AtomicU64,
    /// Live entries.
    len: AtomicU64,
    /// Slots holding a tombstone.
    tombstones: AtomicU64,
    /// End of the last record written (heap offset): the next record goes here.
    heap_used: AtomicU64,
    /// Bytes of records no slot points at any more.
    garbage: AtomicU64,
    _reserved: [AtomicU64; 8],
}
#[cfg(not(shmkit_loom))]
const _: () = assert!(size_of::<TableHeader>() == HEADER as usize);
#[cfg(not(shmkit_loom))]
const _: () = assert!(align_of::<TableHeader>() == 8);

/// The type whose fingerprint marks a dict table segment.
pub(crate) struct DictTable;

/// A checked view of a record in the heap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) hash: u64,
    /// Heap offset of the record.
    pub(crate) offset: u64,
    pub(crate) key_len: u64,
    pub(crate) value_len: u64,
}

impl Record {
    /// Bytes the record takes in the heap, padding included.
    pub(crate) fn size(&self) -> u64 {
        record_size(self.key_len, self.value_len)
    }
}

/// Bytes a record of these lengths takes in the heap.
pub(crate) fn record_size(key_len: u64, value_len: u64) -> u64 {
    (RECORD_HEADER + key_len + value_len).next_multiple_of(8)
}

/// A slot holding the key looked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) slot: u64,
    pub(crate) record: Record,
}

/// What a probe for a key found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    /// The key's slot, if present.
    pub(crate) hit: Option<Hit>,
    /// Where the key would go if absent: the first tombstone or the empty slot that
    /// ended the probe, and whether it is a tombstone.
    pub(crate) vacant: Option<(u64, bool)>,
}

/// Geometry and counters, for `shmkit inspect` and growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) len: u64,
    pub(crate) tombstones: u64,
    pub(crate) heap_used: u64,
    pub(crate) garbage: u64,
}

/// One mapped generation, its geometry checked once at map time and kept here.
pub(crate) struct Table {
    seg: Segment,
    pub(crate) generation: u64,
    pub(crate) slots: u64,
    pub(crate) heap_bytes: u64,
    /// The dict's (control segment's) name, for error messages.
    dict: String,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("segment", &self.seg.name())
            .field("generation", &self.generation)
            .field("slots", &self.slots)
            .field("heap_bytes", &self.heap_bytes)
            .finish()
    }
}

/// Payload bytes of a table of this geometry, `None` if it overflows.
pub(crate) fn payload_size(slots: u64, heap_bytes: u64) -> Option<u64> {
    slots
        .checked_mul(8)?
        .checked_add(HEADER)?
        .checked_add(heap_bytes)
        .filter(|&n| n <= isize::MAX as u64)
}

impl Table {
    /// Create generation `generation` as the named segment `name`: empty, with `slots`
    /// slots (a power of two) and a heap of `heap_bytes`. The segment is never unlinked
    /// on drop: the dict decides when a generation's name goes.
    pub(crate) fn create(
        dict: &str,
        name: &str,
        generation: u64,
        slots: u64,
        heap_bytes: u64,
        mode: u32,
    ) -> Result<Table> {
        debug_assert!(slots.is_power_of_two() && (MIN_SLOTS..=MAX_SLOTS).contains(&slots));
        let size =
            payload_size(slots, heap_bytes.min(MAX_HEAP)).ok_or_else(|| Error::Corrupted {
                name: dict.to_owned(),
                what: format!("a table of {slots} slots and {heap_bytes} heap bytes"),
            })?;
        let seg = Segment::builder(name)
            .size(size as usize)
            .kind(Kind::Bytes)
            .typed::<DictTable>()
            .mode(mode)
            .unlink_on_drop(false)
            .create()?;
        let t = Table {
            seg,
            generation,
            slots,
            heap_bytes: heap_bytes.min(MAX_HEAP),
            dict: dict.to_owned(),
        };
        t.populate(rustix::mm::Advice::LinuxPopulateWrite);
        let h = t.header();
        h.magic.store(TABLE_MAGIC, Ordering::Relaxed);
        h.generation.store(generation, Ordering::Relaxed);
        h.slots.store(slots, Ordering::Relaxed);
        h.heap_bytes.store(t.heap_bytes, Ordering::Relaxed);
        h.heap_used.store(HEAP_START, Ordering::Relaxed);
        // Published to other processes by the Release store of the control segment's
        // generation, which happens after this table is filled.
        Ok(t)
    }

    /// Map generation `generation` from the segment `name`, checking its geometry.
    pub(crate) fn open(dict: &str, name: &str, generation: u64) -> Result<Table> {
        let seg = Segment::builder(name)
            .kind(Kind::Bytes)
            .typed::<DictTable>()
            .open()?;
        let corrupted = |what: String| Error::Corrupted {
            name: dict.to_owned(),
            what: format!("table segment '{name}': {what}"),
        };
        if (seg.len() as u64) < HEADER {
            return Err(corrupted(format!(
                "{} payload bytes, smaller than the table header",
                seg.len()
            )));
        }
        // SAFETY: the payload holds at least HEADER bytes (checked above) at a 128-aligned
        // address; TableHeader is atomics only, valid for any bits; `seg` owns the mapping.
        let h = unsafe { &*seg.as_ptr().cast::<TableHeader>() };
        let magic = h.magic.load(Ordering::Relaxed);
        if magic != TABLE_MAGIC {
            return Err(corrupted(format!(
                "magic {magic:#018x}, expected {TABLE_MAGIC:#018x}"
            )));
        }
        let found = h.generation.load(Ordering::Relaxed);
        if found != generation {
            return Err(corrupted(format!(
                "generation {found}, expected {generation}"
            )));
        }
        // DESIGN rule 2: the geometry addresses every slot and record; check it once here
        // and keep the checked copy in this process.
        let slots = h.slots.load(Ordering::Relaxed);
        if !slots.is_power_of_two() || !(MIN_SLOTS..=MAX_SLOTS).contains(&slots) {
            return Err(corrupted(format!(
                "{slots} slots, expected a power of two in {MIN_SLOTS}..={MAX_SLOTS}"
            )));
        }
        let heap_bytes = h.heap_bytes.load(Ordering::Relaxed);
        let fits = payload_size(slots, heap_bytes).is_some_and(|n| n <= seg.len() as u64);
        if !(HEAP_START..=MAX_HEAP).contains(&heap_bytes) || !fits {
            return Err(corrupted(format!(
                "{slots} slots and a heap of {heap_bytes} bytes do not fit its {} payload bytes",
                seg.len()
            )));
        }
        let t = Table {
            seg,
            generation,
            slots,
            heap_bytes,
            dict: dict.to_owned(),
        };
        t.populate(rustix::mm::Advice::LinuxPopulateRead);
        Ok(t)
    }

    /// Map every page of the table into this process now, once per generation, rather
    /// than one page fault at a time inside the gets and inserts that first touch them
    /// (at a million entries, two faults per operation for the first tens of thousands
    /// of operations after each growth). Advisory: a kernel without it (before 5.14)
    /// just faults later.
    fn populate(&self, how: rustix::mm::Advice) {
        let start = self.seg.as_ptr() as usize;
        let page_start = start & !4095;
        let len = start - page_start + self.seg.len();
        // SAFETY: [page_start, start + len) lies inside this segment's mapping: the
        // mapping starts page-aligned with the segment header, before the payload at
        // `start`, and the payload's `len()` bytes follow. MADV_POPULATE_* only faults
        // pages in; it changes no memory contents and no mapping.
        let _ = unsafe { rustix::mm::madvise(page_start as *mut std::ffi::c_void, len, how) };
    }

    fn corrupted(&self, what: String) -> Error {
        Error::Corrupted {
            name: self.dict.clone(),
            what: format!("table generation {}: {what}", self.generation),
        }
    }

    /// The mapping (for tests that corrupt it).
    #[cfg(test)]
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    fn header(&self) -> &TableHeader {
        // SAFETY: the payload holds at least HEADER bytes (checked at create and open),
        // 128-aligned; atomics only; borrows `self`, which owns the mapping.
        unsafe { &*self.seg.as_ptr().cast::<TableHeader>() }
    }

    #[inline]
    fn slot(&self, i: u64) -> &AtomicU64 {
        let i = i & (self.slots - 1);
        // SAFETY: i < slots, and HEADER + 8 * slots <= payload length (checked at
        // create/open): in bounds.
        let word = unsafe { self.seg.as_ptr().add((HEADER + 8 * i) as usize) };
        // SAFETY: in bounds (above); 8-aligned (HEADER is); AtomicU64 is valid for any
        // bits; borrows `self`, which owns the mapping.
        unsafe { &*word.cast::<AtomicU64>() }
    }

    #[inline]
    fn heap(&self) -> *mut u8 {
        // SAFETY: HEADER + 8 * slots <= payload length (checked at create/open).
        unsafe { self.seg.as_ptr().add((HEADER + 8 * self.slots) as usize) }
    }

    /// Bytes `[offset, offset + len)` of the heap.
    ///
    /// # Safety
    /// `offset + len <= self.heap_bytes`.
    #[inline]
    unsafe fn heap_bytes_at(&self, offset: u64, len: u64) -> &[u8] {
        // SAFETY: offset <= offset + len <= heap_bytes (caller): inside the heap.
        let start = unsafe { self.heap().add(offset as usize) };
        // SAFETY: the range lies inside the heap (caller), which lies inside the mapping
        // `self` owns. The bytes of a published record are never written again in this
        // generation (module docs); a misbehaving process can only make them wrong,
        // which `u8` tolerates.
        unsafe { std::slice::from_raw_parts(start, len as usize) }
    }

    /// The record a live slot word points at, checked to lie inside the heap.
    #[inline]
    pub(crate) fn record(&self, word: u64) -> Result<Record> {
        let offset = (word & OFFSET_MASK) * 8;
        // DESIGN rule 2: offset and lengths come from shared memory; check each before
        // it addresses the heap. (`offset` < 2^43 and the lengths < 2^32: no overflow.)
        if offset < HEAP_START || offset + RECORD_HEADER > self.heap_bytes {
            return Err(self.corrupted(format!(
                "slot word {word:#018x} points at heap offset {offset}, outside {HEAP_START}..{}",
                self.heap_bytes
            )));
        }
        let mut fixed = [0u8; RECORD_HEADER as usize];
        // SAFETY: offset + RECORD_HEADER <= heap_bytes (checked above).
        fixed.copy_from_slice(unsafe { self.heap_bytes_at(offset, RECORD_HEADER) });
        let [
            h0,
            h1,
            h2,
            h3,
            h4,
            h5,
            h6,
            h7,
            k0,
            k1,
            k2,
            k3,
            v0,
            v1,
            v2,
            v3,
        ] = fixed;
        let hash = u64::from_le_bytes([h0, h1, h2, h3, h4, h5, h6, h7]);
        let key_len = u64::from(u32::from_le_bytes([k0, k1, k2, k3]));
        let value_len = u64::from(u32::from_le_bytes([v0, v1, v2, v3]));
        if offset + RECORD_HEADER + key_len + value_len > self.heap_bytes {
            return Err(self.corrupted(format!(
                "record at heap offset {offset} of {key_len} + {value_len} bytes runs past the \
                 heap's {} bytes",
                self.heap_bytes
            )));
        }
        Ok(Record {
            hash,
            offset,
            key_len,
            value_len,
        })
    }

    /// The key bytes of a checked record.
    #[inline]
    pub(crate) fn key(&self, r: &Record) -> &[u8] {
        // SAFETY: `record` checked offset + RECORD_HEADER + key_len + value_len <= heap_bytes.
        unsafe { self.heap_bytes_at(r.offset + RECORD_HEADER, r.key_len) }
    }

    /// The value bytes of a checked record.
    #[inline]
    pub(crate) fn value(&self, r: &Record) -> &[u8] {
        // SAFETY: as in `key`.
        unsafe { self.heap_bytes_at(r.offset + RECORD_HEADER + r.key_len, r.value_len) }
    }

    /// Look for `key` (whose hash is `hash`). Ends at an empty slot; a table without one
    /// (never made by a writer: growth keeps a quarter of the slots empty) is corrupted.
    #[inline]
    pub(crate) fn probe(&self, hash: u64, key: &[u8]) -> Result<Probe> {
        let tag = hash >> OFFSET_BITS;
        let mut i = hash & (self.slots - 1);
        let mut tombstone = None;
        for _ in 0..self.slots {
            // SYNC: Acquire, paired with the Release store in `publish`: the record the
            // word points at is whole.
            let word = self.slot(i).load(Ordering::Acquire);
            if word == EMPTY {
                return Ok(Probe {
                    hit: None,
                    vacant: Some(tombstone.unwrap_or((i, false))),
                });
            }
            if word == TOMBSTONE {
                tombstone.get_or_insert((i, true));
            } else if word >> OFFSET_BITS == tag {
                let record = self.record(word)?;
                if record.hash == hash && self.key(&record) == key {
                    return Ok(Probe {
                        hit: Some(Hit { slot: i, record }),
                        vacant: tombstone,
                    });
                }
            }
            i = (i + 1) & (self.slots - 1);
        }
        match tombstone {
            Some(t) => Ok(Probe {
                hit: None,
                vacant: Some(t),
            }),
            None => Err(self.corrupted(format!("no empty slot among {} slots", self.slots))),
        }
    }

    /// The counters (written under the dict's lock), checked: the writer does arithmetic
    /// with them (DESIGN rule 2), so live entries and tombstones must fit the slots.
    pub(crate) fn counters(&self) -> Result<Counters> {
        let h = self.header();
        let c = Counters {
            len: h.len.load(Ordering::Relaxed),
            tombstones: h.tombstones.load(Ordering::Relaxed),
            heap_used: h.heap_used.load(Ordering::Relaxed),
            garbage: h.garbage.load(Ordering::Relaxed),
        };
        if c.len
            .checked_add(c.tombstones)
            .is_none_or(|n| n > self.slots)
        {
            return Err(self.corrupted(format!(
                "{} entries and {} tombstones counted in a table of {} slots",
                c.len, c.tombstones, self.slots
            )));
        }
        Ok(c)
    }

    /// Live entries, as counted by the writers.
    #[inline]
    pub(crate) fn len(&self) -> u64 {
        // Relaxed: a count, not a publication; a reader that needs an entry finds it
        // through its slot word.
        self.header().len.load(Ordering::Relaxed)
    }

    /// Where a record of `size` bytes would go, `None` if the heap has no room
    /// (writer only).
    pub(crate) fn alloc(&self, size: u64) -> Result<Option<u64>> {
        let used = self.header().heap_used.load(Ordering::Relaxed);
        // DESIGN rule 2: the end mark addresses the next write.
        if used < HEAP_START || used > self.heap_bytes || !used.is_multiple_of(8) {
            return Err(self.corrupted(format!(
                "heap end mark {used}, expected a multiple of 8 in {HEAP_START}..={}",
                self.heap_bytes
            )));
        }
        Ok((size <= self.heap_bytes - used).then_some(used))
    }

    /// Write a record at `offset` (from [`alloc`](Self::alloc), writer only).
    pub(crate) fn write_record(&self, offset: u64, hash: u64, key: &[u8], value: &[u8]) {
        let size = record_size(key.len() as u64, value.len() as u64);
        assert!(
            offset >= HEAP_START && offset + size <= self.heap_bytes,
            "write_record outside the range alloc returned"
        );
        let mut fixed = [0u8; RECORD_HEADER as usize];
        fixed[..8].copy_from_slice(&hash.to_le_bytes());
        fixed[8..12].copy_from_slice(&(key.len() as u32).to_le_bytes());
        fixed[12..].copy_from_slice(&(value.len() as u32).to_le_bytes());
        let heap = self.heap();
        let mut at = offset as usize;
        for part in [&fixed[..], key, value] {
            // SAFETY: the three parts follow each other from `offset` and add up to at
            // most `size` (`record_size`), so [at, at + len) lies inside [offset, offset +
            // size), inside the heap (asserted above); it is past the heap's end mark, so
            // no slot points at it and no reader reads it; the dict's lock makes this the
            // only writer.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), heap.wrapping_add(at), part.len())
            };
            at += part.len();
        }
    }

    /// Move the heap's end mark to `end` (writer only; before the record is published,
    /// so a writer killed after publishing never leaves a live record past the mark).
    pub(crate) fn set_heap_used(&self, end: u64) {
        self.header().heap_used.store(end, Ordering::Relaxed);
    }

    /// Point slot `i` at the record at `offset` (writer only).
    pub(crate) fn publish(&self, i: u64, offset: u64, hash: u64) {
        let word = ((hash >> OFFSET_BITS) << OFFSET_BITS) | (offset / 8);
        // SYNC: Release, paired with the Acquire load in `probe` and `for_each_live`: a
        // reader that sees this word sees the record written before it.
        self.slot(i).store(word, Ordering::Release);
    }

    /// Mark slot `i` removed (writer only).
    pub(crate) fn bury(&self, i: u64) {
        self.slot(i).store(TOMBSTONE, Ordering::Release);
    }

    /// Adjust the counters after an operation (writer only).
    pub(crate) fn count(&self, len: i64, tombstones: i64, garbage: u64) {
        let h = self.header();
        let add = |a: &AtomicU64, d: i64| {
            let v = a.load(Ordering::Relaxed).saturating_add_signed(d);
            a.store(v, Ordering::Relaxed);
        };
        add(&h.len, len);
        add(&h.tombstones, tombstones);
        let g = h.garbage.load(Ordering::Relaxed).saturating_add(garbage);
        h.garbage.store(g, Ordering::Relaxed);
    }

    /// Call `f` with each live slot's index and checked record, in slot order.
    pub(crate) fn for_each_live(
        &self,
        mut f: impl FnMut(u64, &Record) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.slots {
            // SYNC: Acquire, as in `probe`.
            let word = self.slot(i).load(Ordering::Acquire);
            if word > TOMBSTONE {
                let r = self.record(word)?;
                f(i, &r)?;
            }
        }
        Ok(())
    }

    /// Recount every counter from the slots, after a writer died mid-operation: a
    /// count it did not finish, a heap end mark behind a published record (never left
    /// by our writers, but cheap to rule out). Returns the repaired counters.
    pub(crate) fn recount(&self) -> Result<Counters> {
        let (mut len, mut tombstones, mut live_bytes, mut end) = (0u64, 0u64, 0u64, HEAP_START);
        for i in 0..self.slots {
            let word = self.slot(i).load(Ordering::Acquire);
            if word == TOMBSTONE {
                tombstones += 1;
            } else if word != EMPTY {
                let r = self.record(word)?;
                len += 1;
                live_bytes += r.size();
                end = end.max(r.offset + r.size());
            }
        }
        let h = self.header();
        let used = h.heap_used.load(Ordering::Relaxed);
        let used = if used < HEAP_START || used > self.heap_bytes || !used.is_multiple_of(8) {
            end
        } else {
            used.max(end)
        };
        let c = Counters {
            len,
            tombstones,
            heap_used: used,
            garbage: (used - HEAP_START).saturating_sub(live_bytes),
        };
        h.len.store(c.len, Ordering::Relaxed);
        h.tombstones.store(c.tombstones, Ordering::Relaxed);
        h.heap_used.store(c.heap_used, Ordering::Relaxed);
        h.garbage.store(c.garbage, Ordering::Relaxed);
        Ok(c)
    }

    /// Append a record into a table nobody reads yet (growth): no duplicate check, no
    /// tombstones. `Ok(false)` if it has no room.
    pub(crate) fn append_fresh(&self, hash: u64, key: &[u8], value: &[u8]) -> Result<bool> {
        let size = record_size(key.len() as u64, value.len() as u64);
        let Some(offset) = self.alloc(size)? else {
            return Ok(false);
        };
        let mut i = hash & (self.slots - 1);
        for _ in 0..self.slots {
            if self.slot(i).load(Ordering::Relaxed) == EMPTY {
                self.write_record(offset, hash, key, value);
                self.set_heap_used(offset + size);
                self.publish(i, offset, hash);
                self.count(1, 0, 0);
                return Ok(true);
            }
            i = (i + 1) & (self.slots - 1);
        }
        Ok(false)
    }
}
