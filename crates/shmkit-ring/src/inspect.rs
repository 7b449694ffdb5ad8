//! Read-only introspection of a ring segment, for tools (`shmkit inspect`, `shmkit
//! watch`): capacity, depth, counters, side states, sleepers — a snapshot taken without
//! joining the ring (no liveness slot is claimed, no word is written).
//!
//! ```
//! let name = format!("shmkit-doc-inspect-{}", std::process::id());
//! let (mut tx, _rx) = shmkit_ring::spsc::channel(&name, 1 << 12)?;
//! tx.send(b"hello")?;
//! let seg = shmkit_segment::Segment::open(&name)?;
//! let Some(shmkit_ring::inspect::Report::Spsc(ring)) = shmkit_ring::inspect::inspect(&seg)? else {
//!     unreachable!()
//! };
//! assert_eq!((ring.sent, ring.received, ring.depth_messages), (1, 0, 1));
//! assert_eq!(ring.depth_bytes, 16); // an 8-byte length word + "hello" padded to 8
//! assert!(ring.problems.is_empty());
//! # Ok::<(), shmkit_ring::Error>(())
//! ```
//!
//! Everything is read from shared memory that another process may have corrupted
//! (DESIGN rule 2): sizes are checked against the mapping before anything is addressed,
//! and a value that breaks an invariant is listed in `problems` (as text naming what was
//! found) instead of failing the whole snapshot. A layout that does not fit the mapping at
//! all is [`Error::Corrupted`].
//!
//! The snapshot is not atomic: the producer and consumer keep moving while it is read.
//! Positions are read consumer side first, so the depth computed is never negative for a
//! healthy ring.

use crate::endpoint::{STATE_ATTACHED, STATE_CLOSED, STATE_NONE};
use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::queue::handle::Flavor;
use crate::queue::pod::{MPMC_OFFSET, TABLE_OFFSET, pod_capacity};
use crate::raw::mpmc::{self, MpmcHeader};
use crate::raw::packed;
use crate::raw::spsc::{self, Ring};
use crate::registry::{
    CONS_LOCK_OFFSET, HANDLES_OFFSET, HandleEntry, MAX_HANDLES, PACKED, QueueHeader, READY,
    REGISTRY_BYTES, state,
};
use crate::wait::WaitStrategy;
use serde::Serialize;
use shmkit_segment::{Kind, Segment};
use shmkit_sync::wake::WakeWord;

/// A snapshot of one ring segment.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Report {
    /// An SPSC byte ring (`spsc::channel`).
    Spsc(RingView),
    /// A [`Queue`](crate::Queue): one byte ring shared by many handles.
    Queue(QueueView),
    /// A [`PodQueue`](crate::PodQueue): fixed-size slots.
    PodQueue(PodQueueView),
    /// A [`Pipe`](crate::Pipe): two byte rings.
    Pipe(PipeView),
}

/// Totals of one segment, for rates: what went in, what came out, what is inside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// Messages (items) sent so far.
    pub sent: u64,
    /// Messages (items) received so far.
    pub received: u64,
    /// Bytes sent so far (for byte rings: ring bytes, length words and padding included).
    pub bytes_sent: u64,
    /// Bytes received so far (same unit).
    pub bytes_received: u64,
    /// Messages in flight.
    pub depth_messages: u64,
    /// Bytes in flight.
    pub depth_bytes: u64,
    /// Bytes the data area(s) can hold.
    pub capacity_bytes: u64,
}

impl Report {
    /// Every invariant the snapshot found broken (empty for a healthy segment).
    pub fn problems(&self) -> Vec<String> {
        match self {
            Report::Spsc(r) => r.problems.clone(),
            Report::Queue(q) => q.ring.problems.iter().chain(&q.problems).cloned().collect(),
            Report::PodQueue(p) => p.problems.clone(),
            Report::Pipe(p) => {
                p.a.problems
                    .iter()
                    .map(|w| format!("ring A: {w}"))
                    .chain(p.b.problems.iter().map(|w| format!("ring B: {w}")))
                    .collect()
            }
        }
    }

    /// Totals for rates (`shmkit watch`). A pipe adds both directions.
    pub fn flow(&self) -> Flow {
        match self {
            Report::Spsc(r) => r.flow(),
            Report::Queue(q) => q.ring.flow(),
            Report::PodQueue(p) => {
                let item = p.item_size;
                Flow {
                    sent: p.sent,
                    received: p.received,
                    bytes_sent: p.sent.wrapping_mul(item),
                    bytes_received: p.received.wrapping_mul(item),
                    depth_messages: p.depth,
                    depth_bytes: p.depth.wrapping_mul(item),
                    capacity_bytes: p.capacity.wrapping_mul(item),
                }
            }
            Report::Pipe(p) => {
                let (a, b) = (p.a.flow(), p.b.flow());
                Flow {
                    sent: a.sent.wrapping_add(b.sent),
                    received: a.received.wrapping_add(b.received),
                    bytes_sent: a.bytes_sent.wrapping_add(b.bytes_sent),
                    bytes_received: a.bytes_received.wrapping_add(b.bytes_received),
                    depth_messages: a.depth_messages.wrapping_add(b.depth_messages),
                    depth_bytes: a.depth_bytes.wrapping_add(b.depth_bytes),
                    capacity_bytes: a.capacity_bytes.wrapping_add(b.capacity_bytes),
                }
            }
        }
    }
}

/// One side of an SPSC ring (or a pipe end).
#[derive(Debug, Clone, Serialize)]
pub struct SideView {
    /// The side's state word: `none` (nobody attached, or the role is being handed to
    /// another process), `attached`, `closed`, or `invalid` (a value that means nothing).
    pub state: &'static str,
    /// The raw state word.
    pub state_word: u32,
    /// Whether the side's liveness slot is held by a live process (`None` if the kernel
    /// could not be asked).
    pub alive: Option<bool>,
    /// The side's sleeper flag is up: it may be asleep, waiting for the other side.
    pub asleep: bool,
    /// Wake-ups the other side issued to it so far (its futex sequence, a `u32` that wraps).
    pub wakeups: u32,
}

/// A snapshot of one SPSC byte ring.
#[derive(Debug, Clone, Serialize)]
pub struct RingView {
    /// Data area in bytes.
    pub capacity: u64,
    /// Largest message the ring accepts.
    pub max_message: u64,
    /// Consumer position (bytes read so far, monotonic).
    pub head: u64,
    /// Producer position (bytes written so far, monotonic).
    pub tail: u64,
    /// Messages committed by producers so far.
    pub sent: u64,
    /// Messages released by consumers so far.
    pub received: u64,
    /// Bytes in flight (`tail - head`: records with their length words and padding).
    pub depth_bytes: u64,
    /// Messages in flight (`sent - received`).
    pub depth_messages: u64,
    /// How the sides wait: `blocking`, `busy-poll`, `backoff` (or `unknown code N`).
    pub wait_strategy: String,
    /// The producing side (its state word is unused by `Queue`s: see [`QueueView`]).
    pub producer: SideView,
    /// The consuming side.
    pub consumer: SideView,
    /// Broken invariants, each naming what was found.
    pub problems: Vec<String>,
}

impl RingView {
    fn flow(&self) -> Flow {
        Flow {
            sent: self.sent,
            received: self.received,
            bytes_sent: self.tail,
            bytes_received: self.head,
            depth_messages: self.depth_messages,
            depth_bytes: self.depth_bytes,
            capacity_bytes: self.capacity,
        }
    }
}

/// One registered handle of a `Queue` or `PodQueue`.
#[derive(Debug, Clone, Serialize)]
pub struct HandleView {
    /// Its liveness slot.
    pub slot: u32,
    /// `open` (has not put), `producing` (has put), `closed` (will put no more),
    /// `in transit` (reserved for a child), or `invalid`.
    pub state: &'static str,
    /// Whether its process lives (`None` if the kernel could not be asked).
    pub alive: Option<bool>,
}

/// A queue's claim lock (`Queue` only).
#[derive(Debug, Clone, Serialize)]
pub struct ClaimLockView {
    /// Holder's handle slot, if held.
    pub holder: Option<u32>,
    /// Whether the holder's process lives.
    pub holder_alive: Option<bool>,
}

/// A snapshot of a [`Queue`](crate::Queue).
#[derive(Debug, Clone, Serialize)]
pub struct QueueView {
    /// The byte ring every handle shares.
    pub ring: RingView,
    /// Registered handles (every handle may put and get).
    pub handles: Vec<HandleView>,
    /// Handles serialized for another process and not yet opened there.
    pub in_transit: u32,
    /// Items put and not yet `task_done` (what `join` waits for).
    pub unfinished: u64,
    /// A `join` caller may be asleep.
    pub join_asleep: bool,
    /// The producers' claim lock.
    pub put_lock: ClaimLockView,
    /// The consumers' claim lock.
    pub get_lock: ClaimLockView,
    /// Broken invariants of the registry.
    pub problems: Vec<String>,
}

/// A snapshot of a [`PodQueue`](crate::PodQueue).
#[derive(Debug, Clone, Serialize)]
pub struct PodQueueView {
    /// Slots.
    pub capacity: u64,
    /// Bytes per item.
    pub item_size: u64,
    /// Items claimed for writing so far (`tail`).
    pub sent: u64,
    /// Items claimed for reading so far (`head`, abandoned slots included).
    pub received: u64,
    /// Items in the queue (claimed-but-unpublished included).
    pub depth: u64,
    /// Slots skipped because their producer died mid-write.
    pub abandoned: u64,
    /// How producers and consumers wait: `blocking`, `busy-poll`, `backoff`.
    pub wait_strategy: String,
    /// A consumer may be asleep waiting for items.
    pub consumers_asleep: bool,
    /// A producer may be asleep waiting for room.
    pub producers_asleep: bool,
    /// Registered handles.
    pub handles: Vec<HandleView>,
    /// Producers with a claim in progress: (handle slot, position claimed).
    pub claims: Vec<(u32, u64)>,
    /// Handles serialized and not yet opened.
    pub in_transit: u32,
    /// Broken invariants, each naming what was found.
    pub problems: Vec<String>,
}

/// A snapshot of a [`Pipe`](crate::Pipe) segment (anonymous: reachable only through a
/// handle, never by name).
#[derive(Debug, Clone, Serialize)]
pub struct PipeView {
    /// Ring A: end 0 sends, end 1 receives.
    pub a: RingView,
    /// Ring B: end 1 sends, end 0 receives (unused by a one-way pipe).
    pub b: RingView,
}

/// Snapshot the ring in `seg`; `Ok(None)` if the segment's kind is not a ring kind.
pub fn inspect(seg: &Segment) -> Result<Option<Report>> {
    Ok(Some(match seg.kind() {
        Kind::SpscRing => {
            let ring = crate::spsc::ring_of(seg)?;
            Report::Spsc(ring_view(seg, &ring, Some((0, 1)), false))
        }
        Kind::Queue => Report::Queue(queue_view(seg)?),
        Kind::MpmcQueue => Report::PodQueue(pod_view(seg)?),
        Kind::Pipe => {
            let (a, b) = crate::pipe::rings(seg)?;
            Report::Pipe(PipeView {
                a: ring_view(seg, &a, Some((0, 1)), false),
                b: ring_view(seg, &b, Some((1, 0)), false),
            })
        }
        _ => return Ok(None),
    }))
}

fn corrupted(seg: &Segment, what: String) -> Error {
    Error::Corrupted {
        name: seg.name().to_owned(),
        what,
    }
}

fn state_name(word: u32) -> &'static str {
    match word {
        STATE_NONE => "none",
        STATE_ATTACHED => "attached",
        STATE_CLOSED => "closed",
        _ => "invalid",
    }
}

/// The wait strategy a header records, by name; an unknown code is a problem.
fn strategy_name(word: &AtomicU32, problems: &mut Vec<String>) -> String {
    let code = word.load(Ordering::Relaxed);
    match WaitStrategy::from_code(code) {
        Some(s) => s.as_str().to_owned(),
        None => {
            problems.push(format!("wait strategy code {code} is unknown"));
            format!("unknown code {code}")
        }
    }
}

fn side(
    seg: &Segment,
    state: &AtomicU32,
    slot: Option<u32>,
    wake: &WakeWord,
    role: &str,
    problems: &mut Vec<String>,
) -> SideView {
    let word = state.load(Ordering::Acquire);
    if word > STATE_CLOSED {
        problems.push(format!(
            "{role} state word is {word} (expected 0 none, 1 attached or 2 closed)"
        ));
    }
    SideView {
        state: state_name(word),
        state_word: word,
        alive: slot.and_then(|s| seg.is_alive(s).ok()),
        asleep: wake.has_sleepers(),
        wakeups: wake.sequence(),
    }
}

/// `slots`: the (producer, consumer) liveness slots, `None` for a `Queue` (whose ring
/// sides are shared by every handle). `framed`: the records are a `Queue`'s packed
/// records (raw/packed.rs), where an item takes a byte at least and the shared `tail`
/// may be the start of the record still open for appending.
fn ring_view(seg: &Segment, ring: &Ring, slots: Option<(u32, u32)>, framed: bool) -> RingView {
    let h = ring.header();
    let cap = ring.capacity();
    // Consumer side first: `head` only grows and never passes `tail`, so a later read of
    // `tail` is at least the `head` read now (a healthy ring never shows a negative depth).
    let received = h.head.count.load(Ordering::Acquire);
    let head = h.head.pos.load(Ordering::Acquire);
    let sent = h.tail.count.load(Ordering::Acquire);
    let tail = h.tail.pos.load(Ordering::Acquire);
    let stored_cap = h.meta.capacity.load(Ordering::Acquire);
    let mut problems = Vec::new();
    if stored_cap == 0 {
        problems.push("capacity word is 0: the creator never initialised the ring".into());
    }
    for (name, pos) in [("head", head), ("tail", tail)] {
        if !pos.is_multiple_of(8) {
            problems.push(format!(
                "{name} position {pos} is not 8-aligned (records are)"
            ));
        }
    }
    // `tail` may lag `head` (a producer killed between a record's length word, its
    // commit point, and the `tail` store; the next producer catches it up): within a
    // ring's length either way is healthy.
    // The open record at `tail` (framed rings) holds items too.
    let open = if framed && tail.is_multiple_of(8) {
        packed::open_record_len(ring, tail)
    } else {
        0
    };
    let used = tail.wrapping_add(open).wrapping_sub(head);
    let lag = head.wrapping_sub(tail);
    if used > cap && lag > cap {
        problems.push(format!(
            "tail {tail} is not within the capacity {cap} of head {head}"
        ));
    }
    let used = if used > cap { 0 } else { used };
    if received > sent {
        problems.push(format!(
            "consumers released {received} messages, more than the {sent} producers committed"
        ));
    }
    let in_flight = sent.saturating_sub(received);
    // Every record takes at least its 8-byte length word, every packed item a byte (the
    // message count is stored before the record, `tail` after it: a live producer may
    // be one batch ahead of `tail`, never a whole ring).
    let least = if framed { 1 } else { spsc::LEN_WORD };
    if in_flight > cap / least {
        problems.push(format!(
            "{in_flight} messages in flight cannot fit in {cap} bytes ({least} bytes each at \
             least)"
        ));
    }
    let m = &h.meta;
    let producer = side(
        seg,
        &m.producer_state,
        slots.map(|s| s.0),
        &m.space_wake,
        "producer",
        &mut problems,
    );
    let consumer = side(
        seg,
        &m.consumer_state,
        slots.map(|s| s.1),
        &m.data_wake,
        "consumer",
        &mut problems,
    );
    RingView {
        capacity: cap,
        max_message: ring.max_message() as u64,
        head,
        tail,
        sent,
        received,
        depth_bytes: used.min(cap),
        depth_messages: in_flight,
        wait_strategy: strategy_name(&m.wait_strategy, &mut problems),
        producer,
        consumer,
        problems,
    }
}

fn registry_header(seg: &Segment) -> Result<&QueueHeader> {
    if seg.len() < REGISTRY_BYTES {
        return Err(corrupted(
            seg,
            format!("payload of {} bytes is too small for a queue", seg.len()),
        ));
    }
    // SAFETY: the payload holds REGISTRY_BYTES (checked above) and is 128-aligned;
    // `QueueHeader` is atomics only, valid for any bit pattern; the reference borrows
    // `seg`, which owns the mapping.
    Ok(unsafe { &*seg.as_ptr().cast::<QueueHeader>() })
}

/// The registry's `u32` word at `offset` (< REGISTRY_BYTES, 4-aligned).
fn registry_word(seg: &Segment, offset: usize) -> &AtomicU32 {
    assert!(offset + 4 <= REGISTRY_BYTES && offset.is_multiple_of(4));
    // SAFETY: callers checked the payload holds REGISTRY_BYTES (`registry_header`); the
    // word lies inside it (asserted): in bounds.
    let word = unsafe { seg.as_ptr().add(offset) };
    // SAFETY: in bounds (above) and 4-aligned on a 128-aligned base; any bit pattern is
    // a valid `AtomicU32`; the reference borrows `seg`, which owns the mapping.
    unsafe { &*word.cast::<AtomicU32>() }
}

/// Handle-table entry `slot` (docs/memory-layout-ring.md).
fn handle_entry(seg: &Segment, slot: u32) -> &HandleEntry {
    assert!(slot < MAX_HANDLES);
    // SAFETY: callers checked the payload holds REGISTRY_BYTES (`registry_header`), and
    // the MAX_HANDLES entries at HANDLES_OFFSET end there: in bounds.
    let table = unsafe { seg.as_ptr().add(HANDLES_OFFSET) }.cast::<HandleEntry>();
    // SAFETY: slot < MAX_HANDLES (asserted): entry `slot` is inside that table.
    let entry = unsafe { table.add(slot as usize) };
    // SAFETY: in bounds (above), 8-aligned on a 128-aligned base; atomics only, any bit
    // pattern is valid; the reference borrows `seg`, which owns the mapping.
    unsafe { &*entry }
}

/// Handles on their way to a live process.
fn in_transit(seg: &Segment) -> u32 {
    (0..MAX_HANDLES)
        .filter(|&s| crate::registry::ticket_live(handle_entry(seg, s)))
        .count() as u32
}

fn handles(seg: &Segment, problems: &mut Vec<String>) -> Vec<HandleView> {
    let mut out = Vec::new();
    for slot in 0..MAX_HANDLES {
        let word = handle_entry(seg, slot).state.load(Ordering::Acquire);
        let state = match word {
            state::FREE => continue,
            state::OPEN => "open",
            state::PRODUCING => "producing",
            state::CLOSED => "closed",
            state::TRANSIT => "in transit",
            w => {
                problems.push(format!(
                    "handle slot {slot} state word is {w} (expected 0 to 4)"
                ));
                "invalid"
            }
        };
        out.push(HandleView {
            slot,
            state,
            alive: seg.is_alive(slot).ok(),
        });
    }
    out
}

fn claim_lock(
    seg: &Segment,
    word: &AtomicU32,
    what: &str,
    problems: &mut Vec<String>,
) -> ClaimLockView {
    match word.load(Ordering::Acquire) {
        0 => ClaimLockView {
            holder: None,
            holder_alive: None,
        },
        w if w > MAX_HANDLES => {
            problems.push(format!(
                "{what} lock word is {w} (expected 0 or a handle slot + 1 <= {MAX_HANDLES})"
            ));
            ClaimLockView {
                holder: None,
                holder_alive: None,
            }
        }
        w => ClaimLockView {
            holder: Some(w - 1),
            holder_alive: seg.is_alive(w - 1).ok(),
        },
    }
}

fn check_ready(h: &QueueHeader, problems: &mut Vec<String>) {
    let ready = h.ready.load(Ordering::Acquire);
    if ready != READY {
        problems.push(format!(
            "queue ready word is {ready:#x} (expected {READY:#x}): never initialised"
        ));
    }
}

fn queue_view(seg: &Segment) -> Result<QueueView> {
    let h = registry_header(seg)?;
    // Where the queue's ring lies: asked of the queue's own attach.
    let ring = <Ring as Flavor>::attach(seg)?;
    let mut problems = Vec::new();
    check_ready(h, &mut problems);
    // Relaxed: written once before `ready`, checked above.
    let flags = h.flags.load(Ordering::Relaxed);
    if flags & PACKED == 0 {
        problems.push(format!(
            "queue flags {flags:#x} lack PACKED ({PACKED:#x}): not this version's records"
        ));
    }
    let ring = ring_view(seg, &ring, None, true);
    let handles = handles(seg, &mut problems);
    // Items put (the ring's message count) minus items marked done.
    let unfinished = ring.sent.saturating_sub(h.done.load(Ordering::Acquire));
    let put_lock = claim_lock(seg, &h.prod_lock, "put", &mut problems);
    let get_lock = claim_lock(
        seg,
        registry_word(seg, CONS_LOCK_OFFSET),
        "get",
        &mut problems,
    );
    Ok(QueueView {
        ring,
        handles,
        in_transit: in_transit(seg),
        unfinished,
        join_asleep: h.join_wake.has_sleepers(),
        put_lock,
        get_lock,
        problems,
    })
}

fn pod_view(seg: &Segment) -> Result<PodQueueView> {
    let h = registry_header(seg)?;
    let item = seg.fingerprint().size() as usize;
    // Invariant restored (`pod_capacity`): the capacity implied by the mapping's own
    // size (and the item size recorded in the segment header) is a valid power of two
    // and accounts for every byte, so every offset below lies inside the mapping.
    let cap = pod_capacity(seg, item)?;
    // SAFETY: MPMC_OFFSET + HEADER_BYTES <= SEQS_OFFSET <= len (checked above): in bounds.
    let q = unsafe { seg.as_ptr().add(MPMC_OFFSET) };
    // SAFETY: in bounds (above); the offset is a multiple of 128 on a 128-aligned base;
    // `MpmcHeader` is atomics only (valid for any bit pattern); the reference borrows
    // `seg`, which owns the mapping.
    let q = unsafe { &*q.cast::<MpmcHeader>() };
    let mut problems = Vec::new();
    check_ready(h, &mut problems);
    let m = &q.meta;
    let (c, i) = (
        m.capacity.load(Ordering::Acquire),
        m.item_size.load(Ordering::Acquire),
    );
    if c != cap || i != item as u64 {
        problems.push(format!(
            "header says {c} slots of {i} bytes, the segment's size and type imply {cap} of {item}"
        ));
    }
    let head = q.head.load(Ordering::Acquire);
    let tail = q.tail.load(Ordering::Acquire);
    let depth = tail.wrapping_sub(head);
    if depth > cap {
        problems.push(format!(
            "tail {tail} and head {head} are more than the capacity {cap} apart"
        ));
    }
    let mut claims = Vec::new();
    for slot in 0..MAX_HANDLES {
        // SAFETY: entry `slot` lies at TABLE_OFFSET + slot * 128 < SEQS_OFFSET <= len
        // (checked above): in bounds.
        let entry = unsafe {
            seg.as_ptr()
                .add(TABLE_OFFSET + slot as usize * mpmc::ENTRY_BYTES)
        };
        // SAFETY: in bounds (above), 8-aligned; any bit pattern is a valid `AtomicU64`;
        // the reference borrows `seg`.
        let entry = unsafe { &*entry.cast::<AtomicU64>() };
        let intent = entry.load(Ordering::Acquire);
        if intent != 0 {
            claims.push((slot, intent - 1));
        }
    }
    let handles = handles(seg, &mut problems);
    Ok(PodQueueView {
        capacity: cap,
        item_size: item as u64,
        sent: tail,
        received: head,
        depth: depth.min(cap),
        abandoned: m.abandoned.load(Ordering::Relaxed),
        wait_strategy: strategy_name(&m.wait_strategy, &mut problems),
        consumers_asleep: m.data_wake.has_sleepers(),
        producers_asleep: m.space_wake.has_sleepers(),
        handles,
        claims,
        in_transit: in_transit(seg),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmkit_testing::unique;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn spsc_depth_and_counters() {
        let name = unique("spsc");
        let (mut tx, mut rx) = crate::spsc::channel(&name, 1 << 12).unwrap();
        for m in [&b"a"[..], b"bbbbbbbbb", b""] {
            tx.send(m).unwrap();
        }
        rx.recv_vec().unwrap();
        let seg = Segment::open(&name).unwrap();
        let Some(Report::Spsc(r)) = inspect(&seg).unwrap() else {
            panic!("not an spsc report")
        };
        assert_eq!((r.sent, r.received, r.depth_messages), (3, 1, 2));
        assert_eq!(r.depth_bytes, (8 + 16) + 8);
        assert_eq!(r.capacity, 4096);
        assert_eq!(r.producer.state, "attached");
        assert_eq!(r.producer.alive, Some(true));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        drop(tx);
        let Some(Report::Spsc(r)) = inspect(&seg).unwrap() else {
            panic!()
        };
        assert_eq!(r.producer.state, "closed");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn corrupted_positions_are_problems_not_panics() {
        let name = unique("corrupt");
        let (_tx, _rx) = crate::spsc::channel(&name, 1 << 12).unwrap();
        let seg = Segment::open(&name).unwrap();
        seg.atomic_u64(0)
            .unwrap()
            .store(1 << 40 | 3, Ordering::SeqCst); // tail
        seg.atomic_u32(280).unwrap().store(77, Ordering::SeqCst); // producer state
        let Some(Report::Spsc(r)) = inspect(&seg).unwrap() else {
            panic!()
        };
        let all = r.problems.join("\n");
        assert!(all.contains("not 8-aligned"), "{all}");
        assert!(all.contains("not within the capacity"), "{all}");
        assert!(all.contains("producer state word is 77"), "{all}");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn queue_and_pod_queue() {
        let name = unique("q");
        let q = crate::Queue::<u64>::create(&name, 1 << 12).unwrap();
        q.put(&1).unwrap();
        q.put(&2).unwrap();
        let seg = Segment::open(&name).unwrap();
        let Some(Report::Queue(v)) = inspect(&seg).unwrap() else {
            panic!()
        };
        assert_eq!(
            (v.ring.sent, v.ring.depth_messages, v.unfinished),
            (2, 2, 2)
        );
        assert_eq!(v.handles.len(), 1);
        assert_eq!(v.handles[0].alive, Some(true));
        assert!(v.problems.is_empty(), "{:?}", v.problems);

        let name = unique("pq");
        let p = crate::PodQueue::<u32>::create(&name, 8).unwrap();
        p.put(&5).unwrap();
        let seg = Segment::open(&name).unwrap();
        let Some(Report::PodQueue(v)) = inspect(&seg).unwrap() else {
            panic!()
        };
        assert_eq!((v.capacity, v.item_size, v.depth), (8, 4, 1));
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(Report::PodQueue(v).flow().depth_bytes, 4);
    }
}
