//! Packed records: many small items in one record of the SPSC byte ring, the format of a
//! [`Queue`](crate::Queue)'s ring.
//!
//! A bare record ([`super::spsc`]) costs an 8-byte length word and up to 7 bytes of
//! padding per message: 16 bytes for a `u64` item whose encoding is 1 to 5 bytes. A
//! `Queue` therefore packs small items into **framed** records: the payload is a
//! sequence of frames, each a varint length (LEB128, as postcard writes it) and the
//! item's bytes. The length word keeps its role as the one commit point; two more bits
//! say what the record is:
//!
//! | length word | record |
//! |---|---|
//! | `PUBLISHED \| len` | one bare item of `len` bytes (large items: the codec's one-copy path) |
//! | `PUBLISHED \| FRAMES \| len` | frames, **open**: the producer may still append |
//! | `PUBLISHED \| FRAMES \| CLOSED \| len` | frames, closed: nothing more comes |
//!
//! # Producer (under the put lock)
//! - **Append** to the open record `R` (at `r`, `len` bytes): write the frame at
//!   `r + 8 + len`, store the item count, then store `R`'s length word with the larger
//!   length (Release). A producer killed before that store committed nothing: its bytes
//!   lie beyond `R`'s length, and the successor overwrites them.
//! - **Close** `R` when the next item does not fit the record's bound, would make it
//!   cross the end of the data area, does not fit the free space, or is large: zero the
//!   word after `R` (the consumer will read it next), then store `CLOSED` (Release), then
//!   the shared `tail` (`R`'s end). Only then does the next record start, so a producer
//!   killed in between leaves `R` closed and nothing after it.
//! - **Open** a new record with a small item, as a bare record is published (zero the
//!   next word, count, length word with `FRAMES`); the shared `tail` is stored at the open
//!   record's *start*, where a successor's walk stops. Large items go into bare records.
//!
//! The shared `tail` thus always lies on a record boundary: the start of the open record,
//! or the end of the last closed or bare one. A successor producer walks from it as over
//! bare records (`ProducerCore::attach_walk`) and stops at an open record, whose end
//! it never reads as a length word (it may hold a dead predecessor's uncommitted bytes);
//! it appends to that record.
//!
//! # Consumer (under the get lock)
//! `head` stays at the record being read; the shared `head.item_pos` holds the position
//! just past the last frame taken from it. An item is taken by storing the new
//! `item_pos`; when the record is closed and every frame is taken, `head` moves past it
//! (after `item_pos`, so a consumer killed in between leaves a record whose frames are
//! all taken, which the next consumer steps over). An `item_pos` at or below `head`
//! means "nothing taken from this record", so moving `head` needs no second store.
//!
//! **Catching up.** A consumer that has taken every frame it knew of loads the length
//! word again; if the record is still open and holds some new frames but less than
//! [`CATCH_UP_BYTES`] of them, it pauses for [`CATCH_UP_PAUSES`] spin-loop hints and
//! loads the word once more, then takes what is there. Without that, a consumer faster
//! than its producer took each item as soon as it was published, and the two cores
//! traded the record's lines on every item: `Queue<u64>` between two processes took
//! 27-30 ns per item, against 16 ns for the producer's side alone; with the pause, 20-21
//! ns (docs/benchmarks.md, "Issue 17, seventh pass"). The cost is latency, bounded by
//! the pause (about 100 ns on the machine measured): an item that arrives while its
//! consumer is caught up may wait that long. So that a producer that is not streaming
//! (a request and its reply: no second item comes during the pause) does not pay it on
//! every item, a pause during which nothing new came makes the consumer pass the next
//! [`CATCH_UP_SKIPS`] catch-ups without pausing. A record with nothing new is reported
//! empty at once (pausing then too measured the same).
//!
//! Everything read from the ring is validated before it addresses memory: the length
//! word as for bare records plus its kind bits, `item_pos` within the record, each
//! frame's varint within the record's length. A consumer killed after reading an item
//! but before storing `item_pos` never took it: the next consumer reads it again.

use super::RawError;
use super::spsc::{ConsumerCore, LEN_WORD, PADDING, PUBLISHED, ProducerCore, Ring, record_len};
use crate::primitive::Ordering;

/// Length-word bit: the record holds frames (varint length, item bytes).
pub const FRAMES: u64 = 1 << 62;

/// Length-word bit of a framed record: closed, nothing will be appended.
pub const CLOSED: u64 = 1 << 61;

/// Largest payload of a framed record in a large ring: a few pages of items between two
/// moves of `head` (a record's bytes are given back only once it is closed and read).
pub const RECORD_BOUND: u64 = 4096;

/// New frame bytes below which a consumer that caught up with its producer pauses
/// before taking them (see the module docs, "Catching up"): a cache line.
pub const CATCH_UP_BYTES: u64 = 64;

/// Spin-loop hints a consumer that caught up pauses for: about 100 ns where a hint
/// takes 25 ns (the AMD EPYC this was measured on; Intel's take 10-45 ns).
pub const CATCH_UP_PAUSES: u32 = 4;

/// Catch-ups a consumer passes without pausing after a pause during which nothing new
/// came: one pause in this many, then, where its producer is not streaming.
pub const CATCH_UP_SKIPS: u32 = 64;

/// Bytes of the varint (LEB128) for `n`.
#[inline]
pub const fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

/// Write the varint for `n` at the start of `out` (at least [`varint_len`] bytes, 10
/// for any `u64`); returns its length.
#[inline]
pub fn write_varint(mut n: u64, out: &mut [u8]) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

/// Read a varint from the start of `bytes`: `(value, bytes used)`, `None` if it runs past
/// the slice or past 64 bits. (A one-byte varint, a small item's frame length, is read
/// inline; longer ones by a call.)
#[inline(always)]
pub fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    match bytes.first() {
        Some(&b) if b < 0x80 => Some((u64::from(b), 1)),
        _ => read_varint_long(bytes),
    }
}

/// [`read_varint`] past its first byte.
#[inline(never)]
fn read_varint_long(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Whether `word`, just loaded with `taken` payload bytes of its record taken, is an
/// open framed record with new frames, but fewer than [`CATCH_UP_BYTES`] of them.
#[inline]
fn catching_up(word: u64, taken: u64) -> bool {
    let new = (word & !(PUBLISHED | FRAMES | CLOSED)).wrapping_sub(taken);
    word & (PUBLISHED | FRAMES | CLOSED) == PUBLISHED | FRAMES && (1..CATCH_UP_BYTES).contains(&new)
}

/// When items are packed: the largest framed record, and the largest frame packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackLimits {
    /// Largest payload of a framed record.
    pub record: u64,
    /// Largest frame (varint and item) that goes into a framed record; larger items
    /// get a bare record of their own.
    pub item: u64,
}

impl PackLimits {
    /// The limits for a ring of `capacity` bytes: records of at most an eighth of the
    /// ring (so a fixed ring keeps several of them) and [`RECORD_BOUND`]; frames of at
    /// most an eighth of a record.
    pub fn for_capacity(capacity: u64) -> Self {
        let record = (capacity / 8).min(RECORD_BOUND);
        PackLimits {
            record,
            item: record / 8,
        }
    }
}

/// The record a producer may still append to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    /// Ring position of its length word.
    pos: u64,
    /// Payload bytes committed.
    len: u64,
}

/// The producing role over a framed ring: a [`ProducerCore`] and the open record.
#[derive(Debug)]
pub struct PackProducer {
    core: ProducerCore,
    open: Option<Open>,
    limits: PackLimits,
}

impl PackProducer {
    /// Take the producing role (validating as [`ProducerCore::attach`]), continuing the
    /// open record a predecessor left, if any.
    pub fn attach(ring: Ring, limits: PackLimits) -> Result<Self, RawError> {
        let (core, open) = ProducerCore::attach_walk(ring, true)?;
        Ok(PackProducer {
            core,
            open: open.map(|(pos, len)| Open { pos, len }),
            limits,
        })
    }

    /// The ring.
    pub fn ring(&self) -> &Ring {
        &self.core.ring
    }

    /// Ring position where our records end (the open record included).
    #[inline]
    pub fn end(&self) -> u64 {
        self.core.tail
    }

    /// Whether a record is open for appending.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Room for an item of `len` bytes: appended to the open record if it fits there
    /// now, else (after closing the open record) at the start of a new record, framed
    /// if the item is small, bare if not. [`RawError::Full`] if there is no room now
    /// (the open record is closed then, so that the consumer can give its bytes back),
    /// [`RawError::TooLarge`] if there never will be.
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<ItemGrant<'_>, RawError> {
        let max = self.core.ring.max_message();
        if len > max {
            return Err(RawError::TooLarge { len, max });
        }
        let vlen = varint_len(len);
        let frame = (vlen + len) as u64;
        // (`frame <= max`: limits from elsewhere never refuse an item a bare record takes.)
        let small = frame <= self.limits.item && frame <= max as u64;
        let ring = self.core.ring;
        if let Some(open) = self.open {
            let grown = open.len + frame;
            let off = ring.mask(open.pos);
            // Within the bound, not across the end of the data area, and with the
            // word after the grown record free (closing zeroes it).
            if small
                && grown <= self.limits.record
                && record_len(grown) <= ring.cap - off
                && self
                    .core
                    .ensure(record_len(grown) - record_len(open.len) + LEN_WORD)?
            {
                let at = off + LEN_WORD + open.len;
                self.write_varint_at(at, len, vlen);
                return Ok(ItemGrant {
                    at: at + vlen as u64,
                    len,
                    how: How::Append {
                        off,
                        open: Open {
                            pos: open.pos,
                            len: grown,
                        },
                    },
                    prod: self,
                });
            }
            self.close();
        }
        let (payload, kind) = if small {
            (frame as usize, FRAMES)
        } else {
            (len, 0)
        };
        let off = self.core.reserve(payload)?.offset();
        let mut at = off + LEN_WORD;
        if kind == FRAMES {
            self.write_varint_at(at, len, vlen);
            at += vlen as u64;
        }
        Ok(ItemGrant {
            at,
            len,
            how: How::New {
                off,
                len: payload as u64,
                kind,
            },
            prod: self,
        })
    }

    /// Write the varint of `len` (`vlen` bytes) at data offset `at`, in room that
    /// `reserve` found free.
    #[inline]
    fn write_varint_at(&mut self, at: u64, len: usize, vlen: usize) {
        let out = self.bytes_mut(at, vlen);
        write_varint(len as u64, out);
    }

    /// `n` bytes of the data area at offset `at`.
    #[inline]
    fn bytes_mut(&mut self, at: u64, n: usize) -> &mut [u8] {
        let ring = self.core.ring;
        assert!(at + n as u64 <= ring.cap, "a grant lies in the data area");
        // SAFETY: `at + n <= cap` (asserted; `reserve` computed it from a record that fits
        // before the end), so the bytes lie in the data area, valid for the ring's life
        // (`Ring::new`). They are free: beyond every committed byte and before the
        // consumer's `head` plus the capacity (`ensure`), so only this producer touches
        // them, and `&mut self` excludes a second slice.
        unsafe { core::slice::from_raw_parts_mut(ring.data.wrapping_add(at as usize), n) }
    }

    /// Close the open record, if any: nothing more is appended to it, and the consumer
    /// moves past it once it has taken its items.
    pub fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let ring = self.core.ring;
        let end = open.pos.wrapping_add(record_len(open.len));
        // The word after the record is free (each append ensured it) but may hold bytes
        // of an item appended and never committed: zero it, the consumer reads it next.
        // Relaxed: ordered before the consumer's Acquire of `CLOSED` by the Release below.
        ring.len_word(ring.mask(end)).store(0, Ordering::Relaxed);
        // SYNC: Release, paired with the consumer's Acquire of the length word in
        // `PackConsumer::next`: the zeroed word after the record is visible first.
        ring.len_word(ring.mask(open.pos))
            .store(PUBLISHED | FRAMES | CLOSED | open.len, Ordering::Release);
        // The shared `tail` for a successor: the record's end, a boundary again.
        self.core.publish();
    }
}

/// How an [`ItemGrant`] becomes visible.
#[derive(Debug, Clone, Copy)]
enum How {
    /// A frame appended to the open record at data offset `off`, which becomes `open`.
    Append { off: u64, open: Open },
    /// A new record at data offset `off` with `len` payload bytes: framed and open
    /// (`kind` = `FRAMES`) or bare (0).
    New { off: u64, len: u64, kind: u64 },
}

/// Room for one item, from [`PackProducer::reserve`]. Dropping it without
/// [`commit`](Self::commit) publishes nothing.
#[derive(Debug)]
pub struct ItemGrant<'a> {
    prod: &'a mut PackProducer,
    /// Data offset of the item's bytes.
    at: u64,
    len: usize,
    how: How,
}

impl ItemGrant<'_> {
    /// The item's bytes (exactly the requested length; contents unspecified).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.prod.bytes_mut(self.at, self.len)
    }

    /// Whether the item is appended to an open record (not the start of a record).
    #[inline]
    pub fn appends(&self) -> bool {
        matches!(self.how, How::Append { .. })
    }

    /// Publish the item.
    #[inline]
    pub fn commit(self) {
        let prod = self.prod;
        match self.how {
            How::Append { off, open } => {
                let core = &mut prod.core;
                let ring = core.ring;
                // Wrapping, as in `ProducerCore::finish_record`.
                core.sent = core.sent.wrapping_add(1);
                // The count first (a consumer that takes the item and calls
                // `task_done` must find it counted). Relaxed: ordered by the Release.
                ring.header().tail.count.store(core.sent, Ordering::Relaxed);
                // SYNC: Release, paired with the consumer's Acquire of the length word
                // in `PackConsumer::next` (and the SeqCst re-check in `ready`): the
                // appended frame is visible before the larger length.
                ring.len_word(off)
                    .store(PUBLISHED | FRAMES | open.len, Ordering::Release);
                core.tail = open.pos.wrapping_add(record_len(open.len));
                prod.open = Some(open);
            }
            How::New { off, len, kind } => {
                let pos = prod.core.tail;
                prod.core.finish_record(off, len, kind);
                if kind == FRAMES {
                    prod.open = Some(Open { pos, len });
                    // The shared `tail` at the open record's start, where a successor's
                    // walk stops. SYNC: Release, as in `ProducerCore::publish`.
                    prod.core
                        .ring
                        .header()
                        .tail
                        .pos
                        .store(pos, Ordering::Release);
                } else {
                    prod.core.publish();
                }
            }
        }
    }
}

/// The consuming role over a framed ring: a [`ConsumerCore`] (`head`, the item count)
/// and the position inside the record at `head`.
#[derive(Debug)]
pub struct PackConsumer {
    core: ConsumerCore,
    /// Just past the last frame taken from the record at `head`, or at or below `head`.
    item_pos: u64,
    /// The length word last loaded at `head` (0: none): frames below its length are
    /// published, so they are taken without loading the word again.
    word: u64,
    /// Catch-ups still to pass without pausing, after a pause during which nothing new
    /// came (see the module docs, "Catching up").
    skip_pauses: u32,
}

/// What [`PackConsumer::next`] found at `head`.
#[derive(Debug, Clone, Copy)]
enum Found {
    /// A bare record: payload at `off`, `len` bytes.
    Bare { off: u64, len: u64 },
    /// A frame of the framed record `word`: item at `off`, `len` bytes, ending at ring
    /// position `end`.
    Frame {
        off: u64,
        len: u64,
        end: u64,
        word: u64,
    },
}

impl PackConsumer {
    /// Take the consuming role, loading `head` and `item_pos` (validated when used).
    pub fn attach(ring: Ring) -> Result<Self, RawError> {
        let core = ConsumerCore::attach(ring)?;
        // Relaxed: the claim lock's Acquire orders the previous holder's stores.
        let item_pos = ring.header().head.item_pos.load(Ordering::Relaxed);
        Ok(PackConsumer {
            core,
            item_pos,
            word: 0,
            skip_pauses: 0,
        })
    }

    /// `head`: the position of the record being read.
    pub fn head(&self) -> u64 {
        self.core.head
    }

    /// Items taken (the local copy of `head.count`).
    pub fn received(&self) -> u64 {
        self.core.received
    }

    /// Payload bytes already taken from the framed record at `head` (0 if none);
    /// `Corrupted` if `item_pos` points between `head` and its payload.
    #[inline]
    fn taken(&self) -> Result<u64, RawError> {
        let head = self.core.head;
        // At or below `head` (wrapping distance under 2^63): nothing taken yet.
        if head.wrapping_sub(self.item_pos) < 1 << 63 {
            return Ok(0);
        }
        let d = self.item_pos.wrapping_sub(head);
        if d < LEN_WORD {
            return Err(RawError::Corrupted(format!(
                "item position {} inside the length word of the record at {head}",
                self.item_pos
            )));
        }
        Ok(d - LEN_WORD)
    }

    /// Locate the next item, stepping over padding and closed, fully read records.
    #[inline]
    fn next(&mut self) -> Result<Option<Found>, RawError> {
        let ring = self.core.ring;
        loop {
            let off = ring.mask(self.core.head);
            let contig = ring.cap - off;
            let taken = self.taken()?;
            let mut word = self.word;
            // The word last loaded here is reused while frames below its length remain
            // (or it says closed: final); else load it again.
            if word == 0
                || (word & (FRAMES | CLOSED) == FRAMES
                    && word & !(PUBLISHED | FRAMES | CLOSED) <= taken)
            {
                // SYNC: Acquire, paired with the producer's Release stores of this length
                // word (`ItemGrant::commit`, `PackProducer::close`,
                // `ProducerCore::finish_record`, padding in `ProducerCore::reserve`):
                // the frames below its length, and the word after a closed record.
                word = ring.len_word(off).load(Ordering::Acquire);
                if catching_up(word, taken) {
                    if self.skip_pauses == 0 {
                        for _ in 0..CATCH_UP_PAUSES {
                            core::hint::spin_loop();
                        }
                        // SYNC: Acquire, as above.
                        let again = ring.len_word(off).load(Ordering::Acquire);
                        if again == word {
                            // Nothing came while we paused: the producer is not streaming
                            // (a request and its reply), where a pause only adds latency.
                            self.skip_pauses = CATCH_UP_SKIPS;
                        }
                        word = again;
                    } else {
                        self.skip_pauses -= 1;
                    }
                }
                self.word = word;
            }
            match word {
                0 => return Ok(None),
                PADDING if off == 0 => {
                    return Err(RawError::Corrupted(
                        "padding marker at offset 0 (a record always fits there)".into(),
                    ));
                }
                PADDING if taken == 0 => {
                    self.step(contig);
                    continue;
                }
                _ => {}
            }
            let kind = word & (FRAMES | CLOSED);
            let len = word & !(PUBLISHED | FRAMES | CLOSED);
            // Invariant restored: a published record of a known kind whose bytes fit in
            // the data area without crossing its end, with `item_pos` inside it (and
            // none in a bare record). A framed record holds a frame at least (a record
            // is opened with one), so each step over a closed one moves past an item
            // and this loop ends: after a step nothing of the next record is taken.
            if word & PUBLISHED == 0
                || kind == CLOSED
                || (kind != 0 && len == 0)
                || len > ring.max_message() as u64
                || record_len(len) > contig
                || taken > len
                || (kind == 0 && taken != 0)
            {
                return Err(RawError::Corrupted(format!(
                    "length word {word:#x} at offset {off} is no record, or item \
                     position {} lies outside it (head {}, capacity {})",
                    self.item_pos, self.core.head, ring.cap
                )));
            }
            if kind == 0 {
                return Ok(Some(Found::Bare {
                    off: off + LEN_WORD,
                    len,
                }));
            }
            if taken == len {
                if kind & CLOSED == 0 {
                    return Ok(None);
                }
                self.step(record_len(len));
                continue;
            }
            let start = off + LEN_WORD + taken;
            let rest = len - taken;
            // SAFETY: `start + rest = off + 8 + len <= off + record_len(len) <= cap`
            // (checked above): in the data area. The bytes are below the record's
            // published length (Acquired above, or by an earlier load of this word), so
            // they are written, and the producer does not touch them until `head` moves
            // past the record.
            let bytes = unsafe {
                core::slice::from_raw_parts(ring.data.wrapping_add(start as usize), rest as usize)
            };
            // Invariant restored: the frame's varint and its bytes lie within the record.
            let n = match read_varint(bytes) {
                Some((n, used)) if n <= rest - used as u64 => Some((n, used as u64)),
                _ => None,
            };
            let Some((n, used)) = n else {
                return Err(RawError::Corrupted(format!(
                    "frame at offset {start} runs past its record's {len} bytes"
                )));
            };
            let end = self.core.head.wrapping_add(LEN_WORD + taken + used + n);
            return Ok(Some(Found::Frame {
                off: start + used,
                len: n,
                end,
                word,
            }));
        }
    }

    /// Move `head` past `bytes` (padding or a record read to its end) and publish it.
    #[inline]
    fn step(&mut self, bytes: u64) {
        self.core.head = self.core.head.wrapping_add(bytes);
        self.word = 0;
        self.publish(true);
    }

    /// The next item, in place, or `None` if there is none now.
    #[inline]
    pub fn read(&mut self) -> Result<Option<ItemRead<'_>>, RawError> {
        Ok(self.next()?.map(|found| ItemRead { cons: self, found }))
    }

    /// Publish the item count, `item_pos` and, if it `moved`, `head` (an item taken
    /// inside a record frees no bytes: the producer's line is left alone).
    #[inline]
    fn publish(&mut self, moved: bool) {
        let h = self.core.ring.header();
        h.head.count.store(self.core.received, Ordering::Relaxed);
        // Relaxed: read only by the next holder of the get lock (its Acquire orders it),
        // and stored before `head`, so a consumer killed between the two leaves a
        // record whose frames are all taken, never a stale position inside the next.
        h.head.item_pos.store(self.item_pos, Ordering::Relaxed);
        if moved {
            // SYNC: Release, paired with the producer's Acquire of `head` in
            // `ProducerCore::refresh_head`: our reads of the bytes below it are done.
            h.head.pos.store(self.core.head, Ordering::Release);
        }
    }
}

/// One item, in place in the ring, from [`PackConsumer::read`]. Dropping it without
/// [`release`](Self::release) leaves it in the ring.
#[derive(Debug)]
pub struct ItemRead<'a> {
    cons: &'a mut PackConsumer,
    found: Found,
}

impl ItemRead<'_> {
    /// The item's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        let (off, len) = match self.found {
            Found::Bare { off, len } | Found::Frame { off, len, .. } => (off, len),
        };
        // SAFETY: `next` checked that these bytes lie inside a published record inside
        // the data area (`off + len <= cap`); the producer leaves them alone until
        // `head` moves past the record, which only we do.
        unsafe {
            core::slice::from_raw_parts(
                self.cons.core.ring.data.wrapping_add(off as usize),
                len as usize,
            )
        }
    }

    /// Take the item: store the new position (and `head`, if the record is done).
    #[inline]
    pub fn release(self) {
        let cons = self.cons;
        // Wrapping, as in `ProducerCore::finish_record`: it started from shared memory.
        cons.core.received = cons.core.received.wrapping_add(1);
        let moved = match self.found {
            Found::Bare { len, .. } => {
                cons.core.head = cons.core.head.wrapping_add(record_len(len));
                cons.word = 0;
                true
            }
            Found::Frame { end, word, .. } => {
                cons.item_pos = end;
                let len = word & !(PUBLISHED | FRAMES | CLOSED);
                let done = word & CLOSED != 0 && end == cons.core.head.wrapping_add(LEN_WORD + len);
                if done {
                    cons.core.head = cons.core.head.wrapping_add(record_len(len));
                    cons.word = 0;
                }
                done
            }
        };
        cons.publish(moved);
    }
}

impl core::ops::Deref for ItemRead<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

/// The state of the framed record at the shared `head`, for the waiting and bookkeeping
/// helpers below: `(head, word, taken)`, `None` if nothing is published there or
/// `item_pos` is inconsistent (the consumer will say `Corrupted`).
fn at_head(ring: &Ring, order: Ordering) -> Option<(u64, u64, u64)> {
    let h = ring.header();
    let head = h.head.pos.load(order);
    let item_pos = h.head.item_pos.load(order);
    let word = ring.len_word(ring.mask(head)).load(order);
    let taken = if head.wrapping_sub(item_pos) < 1 << 63 {
        0
    } else {
        item_pos.wrapping_sub(head).checked_sub(LEN_WORD)?
    };
    Some((head, word, taken))
}

/// Whether a consumer has something to do at `head`: an item not yet taken, padding, or
/// a closed record read to its end to step over. SeqCst loads (plain loads on x86): the
/// sleeper's re-check in the wait protocol, paired with the producer's store of the
/// length word before its fence (docs/ring.md). A corrupted state reads as ready, so the
/// consumer gets to report it.
pub fn ready(ring: &Ring) -> bool {
    match at_head(ring, Ordering::SeqCst) {
        None => true,
        Some((_, 0, _)) => false,
        Some((_, word, taken)) => {
            word & FRAMES == 0
                || word == PADDING
                || word & CLOSED != 0
                || word & !(PUBLISHED | FRAMES | CLOSED) > taken
        }
    }
}

/// Whether no item is waiting (a snapshot): nothing at `head`, or a framed record read to
/// its end and, if closed, nothing published after it.
pub fn is_empty(ring: &Ring) -> bool {
    match at_head(ring, Ordering::SeqCst) {
        None => false,
        Some((_, 0, _)) => true,
        Some((head, word, taken)) => {
            let len = word & !(PUBLISHED | FRAMES | CLOSED);
            if word == PADDING || word & FRAMES == 0 || len > taken {
                return false;
            }
            if word & CLOSED == 0 {
                return true;
            }
            let next = ring.mask(head.wrapping_add(record_len(len.min(ring.cap))));
            ring.len_word(next).load(Ordering::SeqCst) == 0
        }
    }
}

/// With both claim locks held (nobody moves): if every committed item has been taken,
/// where the committed bytes end — `head`, or the end of the open record at `head`
/// whose frames are all taken (kept: the producer appends to it). `None` if items are
/// waiting, or if anything looks inconsistent (the caller then gives back nothing
/// above `head`).
pub fn drained_end(ring: &Ring) -> Option<u64> {
    let tail = ring.header().tail.pos.load(Ordering::Acquire);
    let (head, word, taken) = at_head(ring, Ordering::Acquire)?;
    if tail != head {
        return None;
    }
    let len = word & !(PUBLISHED | FRAMES | CLOSED);
    match word {
        0 => Some(head),
        w if w & (PUBLISHED | FRAMES | CLOSED) == PUBLISHED | FRAMES
            && len == taken
            && len <= ring.max_message() as u64 =>
        {
            Some(head.wrapping_add(record_len(len)))
        }
        _ => None,
    }
}

/// Bytes of the record open for appending at ring position `pos` (a snapshot, for
/// `shmkit inspect`): its record length if the word there is an open framed record of
/// a valid length that fits before the end of the data area, else 0.
pub fn open_record_len(ring: &Ring, pos: u64) -> u64 {
    let off = ring.mask(pos);
    let word = ring.len_word(off).load(Ordering::Acquire);
    let len = word & !(PUBLISHED | FRAMES | CLOSED);
    let open = word & (PUBLISHED | FRAMES | CLOSED) == PUBLISHED | FRAMES;
    if open && len <= ring.max_message() as u64 && record_len(len) <= ring.cap - off {
        record_len(len)
    } else {
        0
    }
}
