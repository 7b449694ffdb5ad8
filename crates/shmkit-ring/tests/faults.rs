//! Fault injection for the rings (issue 8): a writer or reader that dies at each step of
//! one operation (crash points), and real processes SIGKILLed at random points (kill
//! tests). Every wait is bounded, every name unique; each test checks that it left no
//! segment in /dev/shm and no child process behind.
//!
//! `SHMKIT_TORTURE=<n>` raises the number of kills of the random tests (default 200 for
//! the SPSC producer, a quarter of it for the others).

#![cfg(not(miri))] // real processes and syscalls

use shmkit_process::Process;
use shmkit_ring::primitive::Ordering;
use shmkit_ring::raw::packed::{PackConsumer, PackLimits, PackProducer};
use shmkit_ring::raw::spsc::{HEADER_BYTES, ProducerCore, Ring, SpscHeader};
use shmkit_ring::spsc::{self, Consumer, Producer};
use shmkit_ring::{Error, PodQueue, Queue, TryRecvError, TrySendError, WaitStrategy};
use shmkit_segment::Segment;
use std::time::{Duration, Instant};

shmkit_process::test_support!();

use shmkit_testing::faults::{BOUND, Rng, die, join_killed, torture};
use shmkit_testing::{assert_unlinked, unique};

// --- messages: sequence-numbered and checksummed -----------------------------------

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Message `seq` of producer generation `generation`: 20..=219 bytes.
fn message(generation: u32, seq: u64) -> Vec<u8> {
    let body = ((seq.wrapping_mul(37) + u64::from(generation)) % 200) as usize;
    let mut m = Vec::with_capacity(20 + body);
    m.extend_from_slice(&generation.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend((0..body).map(|k| (seq as usize).wrapping_mul(31).wrapping_add(k) as u8));
    let sum = fnv(&m);
    m.extend_from_slice(&sum.to_le_bytes());
    m
}

/// Check a message's checksum and length; returns (generation, seq).
fn verify(m: &[u8]) -> (u32, u64) {
    assert!(m.len() >= 20, "short message of {} bytes", m.len());
    let (data, sum) = m.split_at(m.len() - 8);
    assert_eq!(
        fnv(data).to_le_bytes(),
        sum,
        "torn or corrupted message of {} bytes",
        m.len()
    );
    let generation = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let seq = u64::from_le_bytes(data[4..12].try_into().unwrap());
    assert_eq!(m, message(generation, seq), "wrong contents");
    (generation, seq)
}

/// A raw view of a named SPSC ring (header and data), to look at positions.
struct RingView {
    seg: Segment,
}

impl RingView {
    fn open(name: &str) -> RingView {
        RingView {
            seg: Segment::open(name).unwrap(),
        }
    }

    fn ring(&self) -> Ring {
        let cap = (self.seg.len() - HEADER_BYTES) as u64;
        // SAFETY: the payload starts with the 384-byte SpscHeader followed by the data
        // area (docs/memory-layout-ring.md); `cap` comes from our own mapping's size; the
        // segment outlives every use of the ring (it is borrowed from `self`).
        unsafe {
            Ring::new(
                self.seg.as_ptr().cast::<SpscHeader>(),
                self.seg.as_ptr().add(HEADER_BYTES),
                cap,
            )
        }
    }

    /// Whether every committed record was released: nothing is published at `head`
    /// and `tail` is not ahead of it. `tail` may be *behind* `head`: a producer killed
    /// between its record's length word (the commit point) and its `tail` store leaves
    /// a record the consumer reads but `tail` does not count; the next producer's
    /// attach walks `tail` past it (docs/ring.md).
    fn drained(&self) -> bool {
        let r = self.ring();
        let h = r.header();
        let ahead = h
            .tail
            .pos
            .load(Ordering::SeqCst)
            .wrapping_sub(h.head.pos.load(Ordering::SeqCst));
        !r.has_data() && (ahead == 0 || ahead > r.capacity())
    }

    /// `head`, `tail` and whether a record is published at `head`, for a failure message.
    fn positions(&self) -> String {
        let r = self.ring();
        let h = r.header();
        format!(
            "head {}, tail {}, record at head: {}",
            h.head.pos.load(Ordering::SeqCst),
            h.tail.pos.load(Ordering::SeqCst),
            r.has_data()
        )
    }
}

// --- 1. crash points: SPSC send -----------------------------------------------------

/// The steps of one zero-copy send, in order; the child dies right after the named one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum SendStep {
    /// Before `reserve`: only the earlier messages exist.
    BeforeReserve,
    /// `reserve` returned the grant (and published padding if the record wraps).
    Reserved,
    /// Half the payload written into the grant.
    HalfWritten,
    /// The whole payload written, not committed.
    Written,
    /// The length word published and the private tail advanced, `tail` not yet stored
    /// (the raw core's `commit_deferred`: the finest step inside `commit`). The length
    /// word is the commit point: the message is delivered, and the next producer's
    /// attach walks `tail` past it.
    LengthWord,
    /// `commit` returned: `tail` is published.
    Committed,
}

const SEND_STEPS: [SendStep; 6] = [
    SendStep::BeforeReserve,
    SendStep::Reserved,
    SendStep::HalfWritten,
    SendStep::Written,
    SendStep::LengthWord,
    SendStep::Committed,
];

/// Child: send `before` whole messages, then die at `step` of the next one.
fn send_and_die_at(args: (Producer, String, u64, SendStep)) {
    let (mut tx, name, before, step) = args;
    for seq in 0..before {
        tx.send_timeout(&message(1, seq), BOUND).unwrap();
    }
    let m = message(1, before);
    if step == SendStep::BeforeReserve {
        die();
    }
    if step == SendStep::LengthWord {
        // The public grant commits in one call; the raw core (same shared state, a
        // second mapping) stops between the length word and the `tail` store.
        let view = RingView::open(&name);
        let mut core = ProducerCore::attach(view.ring()).unwrap();
        let mut g = core.reserve(m.len()).unwrap();
        g.as_mut_slice().copy_from_slice(&m);
        g.commit_deferred();
        die();
    }
    let mut g = tx.reserve(m.len()).unwrap();
    if step == SendStep::Reserved {
        die();
    }
    let half = m.len() / 2;
    g.as_mut_slice()[..half].copy_from_slice(&m[..half]);
    if step == SendStep::HalfWritten {
        die();
    }
    g.as_mut_slice()[half..].copy_from_slice(&m[half..]);
    if step == SendStep::Written {
        die();
    }
    g.commit();
    die();
}

/// For every step of one send, with and without a record that wraps (padding published
/// by `reserve` first): the consumer gets every whole message sent before the crash
/// (and the crashed one only if it was committed), never a torn one, then
/// `Disconnected`; a new producer takes the role and continues on the same ring.
#[test]
fn spsc_send_crash_points_whole_message_or_none() {
    let mut cases = 0;
    for wrap in [false, true] {
        for step in SEND_STEPS {
            let name = unique("send-step");
            let (mut tx, mut rx) = spsc::channel(&name, 1024).unwrap();
            let mut buf = Vec::new();
            if wrap {
                // Move both positions to 1000 bytes in (five 200-byte records), so the
                // next record (at least 32 bytes) cannot fit before the end and
                // `reserve` publishes padding first.
                for _ in 0..5 {
                    tx.send(&[7; 192]).unwrap();
                    rx.recv_into(&mut buf).unwrap();
                }
            }
            let before = if wrap { 0 } else { 3 };
            let child =
                shmkit_process::spawn(send_and_die_at, (tx.transfer(), name.clone(), before, step))
                    .unwrap();
            join_killed(child);
            let t0 = Instant::now();
            let mut got = Vec::new();
            loop {
                match rx.recv_into_timeout(&mut buf, BOUND) {
                    Ok(()) => got.push(verify(&buf).1),
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("{step:?} wrap={wrap}: {e}"),
                }
            }
            assert!(t0.elapsed() < BOUND);
            let view = RingView::open(&name);
            assert!(
                view.drained(),
                "{step:?} wrap={wrap}: a committed message was not delivered: {}",
                view.positions()
            );
            drop(view);
            let committed =
                before + u64::from(matches!(step, SendStep::Committed | SendStep::LengthWord));
            assert_eq!(
                got,
                (0..committed).collect::<Vec<_>>(),
                "{step:?} wrap={wrap}: whole messages, each once, in order"
            );
            // A new producer attaches where the dead one's last commit ended; its
            // messages arrive intact (the dead one's partial bytes are overwritten).
            let mut tx2 = Producer::open(&name).unwrap();
            for seq in 0..3 {
                tx2.send_timeout(&message(2, seq), BOUND).unwrap();
            }
            for seq in 0..3 {
                rx.recv_into_timeout(&mut buf, BOUND).unwrap();
                assert_eq!(verify(&buf), (2, seq), "{step:?} wrap={wrap}");
            }
            drop(tx2);
            assert!(matches!(
                rx.recv_into_timeout(&mut buf, BOUND),
                Err(Error::Disconnected)
            ));
            drop(rx);
            assert_unlinked(&name);
            cases += 1;
        }
    }
    eprintln!("spsc send crash points covered: {cases}");
}

// --- 1. crash points: SPSC receive --------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum RecvStep {
    /// Before `read`.
    BeforeRead,
    /// `read` returned the message in place (all of it looked at), not released.
    Read,
    /// `release` returned: `head` is published.
    Released,
}

fn recv_and_die_at(args: (Consumer, u64, RecvStep)) {
    let (mut rx, before, step) = args;
    let mut buf = Vec::new();
    for seq in 0..before {
        rx.recv_into_timeout(&mut buf, BOUND).unwrap();
        assert_eq!(verify(&buf), (1, seq));
    }
    if step == RecvStep::BeforeRead {
        die();
    }
    let g = rx.read_timeout(BOUND).unwrap();
    assert_eq!(verify(&g), (1, before));
    if step == RecvStep::Read {
        die();
    }
    g.release();
    die();
}

/// A consumer that dies at each step of one receive: the next consumer loses no
/// committed message. A message read but not released is read again (at-least-once
/// across a consumer crash, as docs/ring.md says); a released one is not.
#[test]
fn spsc_recv_crash_points_lose_nothing() {
    for step in [RecvStep::BeforeRead, RecvStep::Read, RecvStep::Released] {
        let name = unique("recv-step");
        let (mut tx, rx) = spsc::channel(&name, 4096).unwrap();
        for seq in 0..6 {
            tx.send(&message(1, seq)).unwrap();
        }
        let child = shmkit_process::spawn(recv_and_die_at, (rx.transfer(), 2, step)).unwrap();
        join_killed(child);
        let mut rx2 = Consumer::open(&name).unwrap();
        let first = if step == RecvStep::Released { 3 } else { 2 };
        let mut buf = Vec::new();
        for seq in first..6 {
            rx2.recv_into_timeout(&mut buf, BOUND).unwrap();
            assert_eq!(verify(&buf), (1, seq), "{step:?}");
        }
        drop(tx);
        assert!(matches!(
            rx2.recv_into_timeout(&mut buf, BOUND),
            Err(Error::Disconnected)
        ));
        drop(rx2);
        assert_unlinked(&name);
    }
}

// --- 1. crash points: Queue packed records ------------------------------------------

/// A small `Queue` item: packed into a shared record (frames of about 16 bytes).
fn p_item(i: u64) -> String {
    format!("packed item {i}")
}

/// The ring of the queue segment `seg` (registry, then the SPSC header and data area).
fn queue_ring(seg: &Segment) -> Ring {
    let cap = (seg.len() - REGISTRY - HEADER_BYTES) as u64;
    // SAFETY: a queue's payload is the registry, the 384-byte SpscHeader and the data
    // area (docs/memory-layout-ring.md); `cap` comes from our own mapping's size; the
    // segment outlives every use of the ring (the caller keeps it).
    unsafe {
        Ring::new(
            seg.as_ptr().add(REGISTRY).cast::<SpscHeader>(),
            seg.as_ptr().add(REGISTRY + HEADER_BYTES),
            cap,
        )
    }
}

/// The new steps of a packed put; the child dies right after the named one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum PackStep {
    /// An item's frame written after the open record's end, its length word not stored.
    AppendWritten,
    /// The open record closed, the next record not started.
    Closed,
}

/// Child: put items `from..to` through the queue (leaving a record open), then, with the
/// raw core over the same ring, die at `step` of item `to`.
fn pack_put_and_die_at(args: (Queue<String>, String, u64, u64, PackStep)) {
    let (q, name, from, to, step) = args;
    for i in from..to {
        q.put_timeout(&p_item(i), BOUND).unwrap();
    }
    let seg = Segment::open(&name).unwrap();
    let ring = queue_ring(&seg);
    let mut p = PackProducer::attach(ring, PackLimits::for_capacity(ring.capacity())).unwrap();
    assert!(p.is_open(), "the puts left a record open");
    match step {
        PackStep::AppendWritten => {
            let bytes = postcard::to_allocvec(&p_item(to)).unwrap();
            let mut g = p.reserve(bytes.len()).unwrap();
            assert!(g.appends());
            g.as_mut_slice().copy_from_slice(&bytes);
            die(); // before the length word's store: nothing committed
        }
        PackStep::Closed => {
            p.close();
            die(); // before the next record
        }
    }
}

fn fixed_or_growing(name: &str, growing: bool) -> Queue<String> {
    if growing {
        Queue::<String>::builder().name(name).create().unwrap()
    } else {
        Queue::<String>::create(name, 4096).unwrap()
    }
}

/// A producer that dies after writing an appended item but before its length store, or
/// between closing a record and starting the next, while the consumer is inside that
/// record: every committed item is delivered once, in order, intact; the dead one is
/// not; a successor producer continues (appending to the open record, or after the
/// closed one) and nothing waits longer than a bound.
#[test]
fn queue_packed_put_crash_points_every_committed_item_once() {
    for growing in [false, true] {
        for step in [PackStep::AppendWritten, PackStep::Closed] {
            let name = unique("pack-put-step");
            let q = fixed_or_growing(&name, growing);
            for i in 0..3 {
                q.put(&p_item(i)).unwrap();
            }
            // The consumer reads inside the open record.
            for i in 0..2 {
                assert_eq!(q.get_timeout(BOUND).unwrap(), p_item(i));
            }
            let args = (q.try_clone().unwrap(), name.clone(), 3, 6, step);
            let child = shmkit_process::spawn(pack_put_and_die_at, args).unwrap();
            join_killed(child);
            for i in 2..6 {
                assert_eq!(q.get_timeout(BOUND).unwrap(), p_item(i), "{step:?}");
            }
            assert!(
                q.is_empty(),
                "{step:?}: the uncommitted item is not delivered"
            );
            // A successor producer (this handle, attaching afresh) continues.
            let mut next = 6;
            for i in 6..400 {
                q.put_timeout(&p_item(i), BOUND).unwrap();
                // Now and then take all but the last: a record stays open across turns.
                while i % 7 == 0 && next < i {
                    assert_eq!(q.get_timeout(BOUND).unwrap(), p_item(next), "{step:?}");
                    next += 1;
                }
            }
            for k in next..400 {
                assert_eq!(q.get_timeout(BOUND).unwrap(), p_item(k), "{step:?}");
            }
            assert!(q.is_empty());
            assert!(matches!(q.try_get(), Err(TryRecvError::Disconnected)));
            drop(q);
            assert_unlinked(&name);
        }
    }
}

/// Child: take items `0..before` through the queue, then read item `before` with the raw
/// core over the same ring and die before storing the position past it.
fn pack_get_and_die(args: (Queue<String>, String, u64)) {
    let (q, name, before) = args;
    for i in 0..before {
        assert_eq!(q.get_timeout(BOUND).unwrap(), p_item(i));
    }
    let seg = Segment::open(&name).unwrap();
    let mut c = PackConsumer::attach(queue_ring(&seg)).unwrap();
    let g = c.read().unwrap().expect("an item waits");
    assert_eq!(postcard::from_bytes::<String>(&g).unwrap(), p_item(before));
    die(); // read, position not stored
}

/// A consumer that dies after reading an item but before storing its position took
/// nothing: the next consumer gets that item and the rest, each once, in order — at
/// the start of a record, inside one, and after stepping over closed records.
#[test]
fn queue_packed_get_crash_point_loses_nothing_and_repeats_nothing() {
    for growing in [false, true] {
        for before in [0, 5, 90] {
            // 120 items of ~16 bytes: several closed records, within a 4 KiB ring.
            let name = unique("pack-get-step");
            let q = fixed_or_growing(&name, growing);
            for i in 0..120 {
                q.put(&p_item(i)).unwrap();
            }
            let args = (q.try_clone().unwrap(), name.clone(), before);
            let child = shmkit_process::spawn(pack_get_and_die, args).unwrap();
            join_killed(child);
            for i in before..120 {
                assert_eq!(q.get_timeout(BOUND).unwrap(), p_item(i), "after {before}");
            }
            assert!(q.is_empty());
            assert!(matches!(q.try_get(), Err(TryRecvError::Disconnected)));
            drop(q);
            assert_unlinked(&name);
        }
    }
}

// --- 1. crash points: MPMC slot publish ---------------------------------------------

/// PodQueue layout (docs/memory-layout-ring.md): positions, producer table, sequences.
/// Bytes of a queue's handle registry (docs/memory-layout-ring.md): two lines, then
/// 1024 handle entries of 32 bytes.
const REGISTRY: usize = 256 + 32 * shmkit_ring::MAX_HANDLES as usize;
const POD_TAIL: usize = REGISTRY;
const POD_HEAD: usize = REGISTRY + 128;
const POD_TABLE: usize = REGISTRY + 384;
const POD_SEQS: usize = POD_TABLE + 128 * shmkit_ring::MAX_HANDLES as usize;
const POD_CAP: u64 = 8;
type Item = [u64; 4];

fn item(producer: u64, seq: u64) -> Item {
    let sum = fnv(&[producer.to_le_bytes(), seq.to_le_bytes()].concat());
    [producer, seq, sum, !sum]
}

fn verify_item(it: Item) -> (u64, u64) {
    assert_eq!(it, item(it[0], it[1]), "torn or corrupted item {it:x?}");
    (it[0], it[1])
}

/// The steps of one `put`, in order; the child dies right after the named one.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
enum PutStep {
    /// Its intent (`p + 1`) stored in its producer-table entry; no CAS on `tail` yet.
    Intent,
    /// `tail` CASed from `p` to `p + 1`: the slot is claimed, nothing written.
    Claimed,
    /// Half the item written into the slot.
    HalfWritten,
    /// The whole item written, the sequence not yet stored.
    Written,
    /// The sequence stored (published), the intent not yet cleared.
    Published,
    /// The intent cleared: the put is complete.
    Cleared,
}

const PUT_STEPS: [PutStep; 6] = [
    PutStep::Intent,
    PutStep::Claimed,
    PutStep::HalfWritten,
    PutStep::Written,
    PutStep::Published,
    PutStep::Cleared,
];

/// Child: put item 0 normally, then die at `step` of putting item 1. The steps after
/// the claim are carried out on the shared bytes exactly as `Claim` does them (the
/// public API has no stop between them); the claim is the library's own
/// (`claim_and_abandon_for_test`).
fn put_and_die_at(args: (PodQueue<Item>, String, PutStep)) {
    let (q, name, step) = args;
    q.put_timeout(&item(9, 0), BOUND).unwrap();
    let seg = Segment::open(&name).unwrap();
    let tail = || seg.atomic_u64(POD_TAIL).unwrap();
    let seq_of = |pos: u64| {
        seg.atomic_u64(POD_SEQS + 8 * (pos % POD_CAP) as usize)
            .unwrap()
    };
    let slot_at = POD_SEQS + 8 * POD_CAP as usize;
    let stride = 32;
    let p = tail().load(Ordering::SeqCst);
    q.claim_and_abandon_for_test().unwrap();
    assert_eq!(tail().load(Ordering::SeqCst), p + 1, "claimed position p");
    // Our producer-table entry is the one whose intent names p + 1.
    let entry = (0..shmkit_ring::MAX_HANDLES as usize)
        .map(|e| seg.atomic_u64(POD_TABLE + 128 * e).unwrap())
        .find(|w| w.load(Ordering::SeqCst) == p + 1)
        .expect("our intent is in the table");
    if step == PutStep::Claimed {
        die();
    }
    let bytes: Vec<u8> = item(9, 1).iter().flat_map(|w| w.to_le_bytes()).collect();
    let at = slot_at + stride * (p % POD_CAP) as usize;
    seg.write_bytes(at, &bytes[..16]).unwrap();
    if step == PutStep::HalfWritten {
        die();
    }
    seg.write_bytes(at + 16, &bytes[16..]).unwrap();
    if step == PutStep::Written {
        die();
    }
    // As `Claim::publish`: the sequence (Release), then the intent (SeqCst).
    seq_of(p).store(p + 1, Ordering::Release);
    if step == PutStep::Published {
        die();
    }
    entry.store(0, Ordering::SeqCst);
    if step == PutStep::Cleared {
        die();
    }
    // Intent: a stale intent for the *next* position, with no CAS behind it.
    entry.store(p + 2, Ordering::SeqCst);
    die();
}

/// For every step of one MPMC put: the consumer never stalls beyond the bound, gets
/// every published item once and intact, skips (and counts) only a slot that was
/// claimed and never published, never skips a live claimant's slot (even one that a
/// dead producer's stale intent also names), and a new handle reuses the dead entry.
#[test]
fn mpmc_put_crash_points_publish_or_abandon() {
    for step in PUT_STEPS {
        let name = unique("put-step");
        let q = PodQueue::<Item>::create(&name, POD_CAP as usize).unwrap();
        let child = shmkit_process::spawn(put_and_die_at, (q.clone(), name.clone(), step)).unwrap();
        join_killed(child);
        let published = matches!(
            step,
            PutStep::Intent | PutStep::Published | PutStep::Cleared
        );
        let t0 = Instant::now();
        let mut got = Vec::new();
        loop {
            match q.get_timeout(BOUND) {
                Ok(it) => got.push(verify_item(it)),
                Err(Error::Disconnected) => break,
                Err(e) => panic!("{step:?}: {e}"),
            }
        }
        let waited = t0.elapsed();
        assert!(
            waited < Duration::from_secs(2),
            "{step:?}: stalled {waited:?}"
        );
        let want: Vec<(u64, u64)> = if published {
            vec![(9, 0), (9, 1)]
        } else {
            vec![(9, 0)]
        };
        assert_eq!(got, want, "{step:?}");
        assert_eq!(q.abandoned(), u64::from(!published), "{step:?}");
        // A live handle claims the next position, which a dead producer's stale intent
        // (step Intent) also names: while the claimant lives, its slot is waited for.
        let live = q.clone();
        live.claim_and_abandon_for_test().unwrap();
        assert!(matches!(
            q.get_timeout(Duration::from_millis(30)),
            Err(Error::Timeout)
        ));
        assert_eq!(
            q.abandoned(),
            u64::from(!published),
            "{step:?}: live slot skipped"
        );
        drop(live); // its liveness slot is released: now it counts as dead
        q.put(&item(3, 0)).unwrap();
        assert_eq!(verify_item(q.get_timeout(BOUND).unwrap()), (3, 0));
        assert_eq!(q.abandoned(), 1 + u64::from(!published), "{step:?}");
        // A new handle registers (possibly in the dead child's entry) and works.
        let again = PodQueue::<Item>::open(&name).unwrap();
        again.put(&item(4, 0)).unwrap();
        assert_eq!(verify_item(q.get_timeout(BOUND).unwrap()), (4, 0));
        drop((again, q));
        assert_unlinked(&name);
    }
}

// --- 2. kill tests: SPSC producer killed at random ------------------------------------

/// Child: take the producer role by name and send generation `g`'s messages until
/// killed (bounded: a send that cannot proceed for BOUND ends the child).
fn produce_until_killed(args: (String, u32)) {
    let (name, generation) = args;
    let t0 = Instant::now();
    let mut tx = loop {
        match Producer::open(&name) {
            Ok(tx) => break tx,
            // The previous producer's death is seen by the kernel before its reaping
            // completes; the role frees at once after that.
            Err(Error::RoleTaken { .. }) if t0.elapsed() < BOUND => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    for seq in 0.. {
        if tx.send_timeout(&message(generation, seq), BOUND).is_err() {
            return;
        }
    }
}

/// At least 200 producers (SHMKIT_TORTURE) SIGKILLed at random points while sending
/// variable-size, checksummed, sequence-numbered messages through a 4 KiB ring (so the
/// producer is often blocked, wrapping or mid-record when it dies). The consumer sees
/// each generation's messages as 0, 1, 2, ... (every committed message exactly once, in
/// order, intact), then `Disconnected` after the drain with nothing left in the ring;
/// the next producer attaches and continues on the same ring.
#[test]
fn spsc_producer_killed_at_random_points() {
    producer_killed(
        WaitStrategy::Blocking,
        torture(200),
        "spsc_producer_killed_at_random_points",
    );
}

/// The same on a `BusyPoll` ring (fewer kills: the parent spins while it waits).
#[test]
fn busy_poll_spsc_producer_killed_at_random_points() {
    producer_killed(
        WaitStrategy::BusyPoll,
        torture(200) / 4,
        "busy_poll_spsc_producer_killed_at_random_points",
    );
}

/// The same on a `Backoff` ring.
#[test]
fn backoff_spsc_producer_killed_at_random_points() {
    producer_killed(
        WaitStrategy::Backoff,
        torture(200) / 4,
        "backoff_spsc_producer_killed_at_random_points",
    );
}

fn producer_killed(strategy: WaitStrategy, kills: u64, test: &str) {
    let mut rng = Rng::new(test);
    let name = unique("kill-producer");
    let (tx, mut rx) = spsc::builder(4096)
        .name(&name)
        .wait(strategy)
        .create()
        .unwrap();
    drop(tx); // every producer is a child that opens the role by name
    let view = RingView::open(&name);
    let mut buf = Vec::new();
    let mut verified = 0u64;
    let t_start = Instant::now();
    for generation in 1..=kills as u32 {
        let child =
            shmkit_process::spawn(produce_until_killed, (name.clone(), generation)).unwrap();
        // Kill after a random number of messages received (0: maybe before it attached).
        let target = rng.below(400);
        let mut next = 0u64;
        let t0 = Instant::now();
        while next < target {
            match rx.recv_into_timeout(&mut buf, BOUND) {
                Ok(()) => {
                    assert_eq!(verify(&buf), (generation, next), "generation {generation}");
                    next += 1;
                }
                // The previous (dead) producer until the new one attaches.
                Err(Error::Disconnected) if child.is_alive() && t0.elapsed() < BOUND => {
                    std::thread::yield_now()
                }
                Err(e) => panic!("generation {generation}: {e}"),
            }
        }
        child.kill().unwrap();
        join_killed(child);
        // Drain: what it committed before dying, then Disconnected.
        loop {
            match rx.recv_into_timeout(&mut buf, BOUND) {
                Ok(()) => {
                    assert_eq!(verify(&buf), (generation, next), "generation {generation}");
                    next += 1;
                }
                Err(Error::Disconnected) => break,
                Err(e) => panic!("generation {generation}: {e}"),
            }
        }
        assert!(
            view.drained(),
            "a committed message was not delivered: {}",
            view.positions()
        );
        verified += next;
    }
    eprintln!(
        "spsc producer kills survived: {kills}, messages verified: {verified}, in {:?}",
        t_start.elapsed()
    );
    drop((rx, view));
    assert_unlinked(&name);
}

// --- 2. kill tests: SPSC consumer killed at random -------------------------------------

/// Progress words a consumer child keeps in a segment: offset 0 = 1 + seq of the last
/// message it has verified (stored before release), offset 8 = 1 + seq of the first
/// message it saw.
fn consume_until_killed(args: (String, String)) {
    let (name, progress) = args;
    let t0 = Instant::now();
    let mut rx = loop {
        match Consumer::open(&name) {
            Ok(rx) => break rx,
            Err(Error::RoleTaken { .. }) if t0.elapsed() < BOUND => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    };
    let p = Segment::open(&progress).unwrap();
    let (read, first) = (p.atomic_u64(0).unwrap(), p.atomic_u64(8).unwrap());
    let mut expect = None;
    loop {
        let Ok(g) = rx.read_timeout(BOUND) else {
            return;
        };
        let (_, seq) = verify(&g);
        if let Some(e) = expect {
            assert_eq!(seq, e, "consecutive");
        } else {
            first.store(seq + 1, Ordering::SeqCst);
        }
        read.store(seq + 1, Ordering::SeqCst);
        g.release();
        expect = Some(seq + 1);
    }
}

/// Consumers SIGKILLed at random points while reading in place: the next consumer
/// starts at the message the dead one had not released (so it is the last one the dead
/// one read, or the one after) — no committed message is lost, at most one is seen
/// twice — and the final drain is consecutive up to the last message sent.
#[test]
fn spsc_consumer_killed_at_random_points() {
    consumer_killed(
        WaitStrategy::Blocking,
        torture(200) / 4,
        "spsc_consumer_killed_at_random_points",
    );
}

/// The same on a `BusyPoll` ring.
#[test]
fn busy_poll_spsc_consumer_killed_at_random_points() {
    consumer_killed(
        WaitStrategy::BusyPoll,
        torture(200) / 8,
        "busy_poll_spsc_consumer_killed_at_random_points",
    );
}

/// The same on a `Backoff` ring.
#[test]
fn backoff_spsc_consumer_killed_at_random_points() {
    consumer_killed(
        WaitStrategy::Backoff,
        torture(200) / 8,
        "backoff_spsc_consumer_killed_at_random_points",
    );
}

fn consumer_killed(strategy: WaitStrategy, kills: u64, test: &str) {
    let mut rng = Rng::new(test);
    let name = unique("kill-consumer");
    let progress_name = unique("kill-consumer-progress");
    let progress = Segment::create(&progress_name, 64).unwrap();
    let (read, first) = (
        progress.atomic_u64(0).unwrap(),
        progress.atomic_u64(8).unwrap(),
    );
    let (mut tx, rx) = spsc::builder(4096)
        .name(&name)
        .wait(strategy)
        .create()
        .unwrap();
    drop(rx);
    let mut sent = 0u64;
    let mut last_read = 0u64; // 1 + seq the previous (dead) consumer had read
    let mut redelivered = 0;
    for k in 0..kills {
        first.store(0, Ordering::SeqCst);
        let child =
            shmkit_process::spawn(consume_until_killed, (name.clone(), progress_name.clone()))
                .unwrap();
        let target = last_read + 1 + rng.below(300);
        let t0 = Instant::now();
        // Produce until the child has read `target` messages (bounded).
        while read.load(Ordering::SeqCst) < target {
            assert!(t0.elapsed() < BOUND, "consumer {k} stalled");
            match tx.try_send(&message(1, sent)) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full) | Err(TrySendError::Disconnected) => {
                    std::thread::yield_now()
                }
                Err(e) => panic!("{e}"),
            }
        }
        child.kill().unwrap();
        join_killed(child);
        let f = first.load(Ordering::SeqCst);
        assert!(f > 0, "consumer {k} saw a first message");
        // Its first message is the one after what its predecessor had read, or that one
        // again (predecessor killed between reading and releasing it).
        assert!(
            f - 1 == last_read || (last_read > 0 && f - 1 == last_read - 1),
            "consumer {k} started at {} after its predecessor read up to {last_read}",
            f - 1
        );
        redelivered += u64::from(last_read > 0 && f - 1 == last_read - 1);
        last_read = read.load(Ordering::SeqCst);
    }
    // The last consumer is this process: it drains what is left, in order. (Opened
    // before the producer drops: the last handle of the creating process unlinks.)
    let mut rx = Consumer::open(&name).unwrap();
    drop(tx);
    let mut buf = Vec::new();
    let mut next = None;
    loop {
        match rx.recv_into_timeout(&mut buf, BOUND) {
            Ok(()) => {
                let (_, seq) = verify(&buf);
                match next {
                    None => assert!(seq == last_read || seq + 1 == last_read),
                    Some(n) => assert_eq!(seq, n),
                }
                next = Some(seq + 1);
            }
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        next.unwrap_or(last_read),
        sent,
        "every message up to the last sent"
    );
    eprintln!(
        "spsc consumer kills survived: {kills}, messages sent: {sent}, read again after a kill: {redelivered}"
    );
    drop((rx, progress));
    assert_unlinked(&name);
    assert_unlinked(&progress_name);
}

// --- 2. kill tests: MPMC producers killed between claim and publish --------------------

/// The queue's positions, the head slot's sequence and the non-zero intents, for
/// failure messages.
fn pod_state(seg: &Segment) -> String {
    let word = |off: usize| seg.atomic_u64(off).unwrap().load(Ordering::SeqCst);
    let (tail, head) = (word(POD_TAIL), word(POD_HEAD));
    let intents: Vec<(usize, u64, bool)> = (0..64)
        .map(|e| {
            (
                e,
                word(POD_TABLE + 128 * e),
                seg.is_alive(e as u32).unwrap_or(true),
            )
        })
        .filter(|&(_, i, _)| i != 0)
        .collect();
    let cap = (seg.len() - POD_SEQS) / (8 + 32);
    format!(
        "head {head}, tail {tail}, seq[head] {}, intents (entry, intent, alive) {intents:?}",
        word(POD_SEQS + 8 * (head as usize % cap))
    )
}

/// Child: put `(id, 0), (id, 1), ...`; after `abandon_at` items (if any) claim a slot
/// and SIGKILL itself before publishing it; otherwise put 500 and wait to be killed.
fn pod_produce(args: (PodQueue<Item>, u64, Option<u64>)) {
    let (q, id, abandon_at) = args;
    for seq in 0.. {
        if Some(seq) == abandon_at {
            let t0 = Instant::now();
            loop {
                match q.claim_and_abandon_for_test() {
                    Ok(()) => die(),
                    Err(Error::Full) if t0.elapsed() < BOUND => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        if seq == 500 {
            // Enough: wait to be killed (bounded), leaving the queue to the others.
            std::thread::sleep(BOUND);
            return;
        }
        if q.put_timeout(&item(id, seq), BOUND).is_err() {
            return;
        }
    }
}

/// Producers of a PodQueue die at random: half of them between claim and publish (they
/// claim a slot and SIGKILL themselves after a random number of items), the others
/// SIGKILLed by us at random points (a kill may land between claim and publish too).
/// Two producers run at a time. The consumer never waits more than a bound while an
/// item is pending, receives each producer's items as a gap-free prefix 0, 1, 2, ...
/// (every published item once, intact), and claimed = received + abandoned at the end,
/// with abandoned at least the number of deliberate abandons.
#[test]
fn mpmc_producers_killed_between_claim_and_publish() {
    mpmc_producers_killed(
        WaitStrategy::Blocking,
        torture(200) / 4,
        "mpmc_producers_killed_between_claim_and_publish",
    );
}

/// The same on `BusyPoll` and `Backoff` queues.
#[test]
fn polling_mpmc_producers_killed_between_claim_and_publish() {
    for (strategy, test) in [
        (WaitStrategy::BusyPoll, "busy_poll_mpmc_producers_killed"),
        (WaitStrategy::Backoff, "backoff_mpmc_producers_killed"),
    ] {
        mpmc_producers_killed(strategy, torture(200) / 8, test);
    }
}

fn mpmc_producers_killed(strategy: WaitStrategy, kills: u64, test: &str) {
    let mut rng = Rng::new(test);
    let name = unique("kill-mpmc");
    let q = PodQueue::<Item>::builder(64)
        .name(&name)
        .wait(strategy)
        .create()
        .unwrap();
    let seg = Segment::open(&name).unwrap();
    let mut next = std::collections::HashMap::<u64, u64>::new();
    let mut running: Vec<(Process<()>, bool)> = Vec::new();
    let mut deliberate = 0u64;
    let mut max_wait = Duration::ZERO;
    let mut received = 0u64;
    let mut id = 0u64;
    let mut recv_one = |q: &PodQueue<Item>, next: &mut std::collections::HashMap<u64, u64>| {
        let t0 = Instant::now();
        let r = q.get_timeout(Duration::from_millis(200));
        let waited = t0.elapsed();
        match r {
            Ok(it) => {
                let (p, seq) = verify_item(it);
                let n = next.entry(p).or_insert(0);
                assert_eq!(seq, *n, "producer {p}: gap-free, each once, in order");
                *n += 1;
                received += 1;
                max_wait = max_wait.max(waited);
                true
            }
            Err(Error::Timeout) | Err(Error::Disconnected) => false,
            Err(e) => panic!("{e}"),
        }
    };
    for _ in 0..kills {
        while running.len() < 2 {
            id += 1;
            let abandon = (rng.below(2) == 0).then(|| rng.below(200));
            let p = shmkit_process::spawn(pod_produce, (q.clone(), id, abandon)).unwrap();
            running.push((p, abandon.is_some()));
        }
        let (victim, abandons) = running.remove(0);
        if abandons {
            // It kills itself between claim and publish once it has put its items.
            let t0 = Instant::now();
            while victim.is_alive() {
                assert!(
                    t0.elapsed() < BOUND,
                    "producer never reached its abandon point"
                );
                if !recv_one(&q, &mut next) {
                    std::thread::yield_now();
                }
            }
            deliberate += 1;
        } else {
            // Receive a random number of items, then kill it wherever it is.
            for _ in 0..rng.below(300) {
                if !recv_one(&q, &mut next) {
                    break;
                }
            }
            victim.kill().unwrap();
        }
        join_killed(victim);
    }
    for (p, _) in running.drain(..) {
        p.kill().unwrap();
        join_killed(p);
    }
    q.close();
    let t0 = Instant::now();
    loop {
        let t1 = Instant::now();
        match q.get_timeout(Duration::from_secs(1)) {
            Ok(it) => {
                let (p, seq) = verify_item(it);
                let n = next.entry(p).or_insert(0);
                assert_eq!(seq, *n, "producer {p}");
                *n += 1;
                received += 1;
                max_wait = max_wait.max(t1.elapsed());
            }
            // Even a handle serialized for a child that was killed before it opened
            // it does not keep the queue connected: the drain ends with Disconnected.
            Err(Error::Disconnected) => break,
            Err(e) => panic!("{e}: {}", pod_state(&seg)),
        }
    }
    assert!(t0.elapsed() < BOUND, "final drain bounded");
    let claimed = seg.atomic_u64(POD_TAIL).unwrap().load(Ordering::SeqCst);
    let head = seg.atomic_u64(POD_HEAD).unwrap().load(Ordering::SeqCst);
    assert_eq!(head, claimed, "nothing left behind");
    assert_eq!(
        claimed,
        received + q.abandoned(),
        "every claim published or abandoned"
    );
    assert!(
        q.abandoned() >= deliberate,
        "abandoned {} < {deliberate}",
        q.abandoned()
    );
    assert!(max_wait < Duration::from_secs(1), "stalled {max_wait:?}");
    eprintln!(
        "mpmc producer kills survived: {kills} ({deliberate} between claim and publish), \
         items verified: {received}, abandoned: {}, longest wait for a pending item: \
         {max_wait:?}",
        q.abandoned(),
    );
    drop((q, seg));
    assert_unlinked(&name);
}

// --- 2. kill tests: Queue producers killed holding the claim lock ----------------------

/// A `Queue` item: producer, sequence and a body whose length and bytes follow from
/// both (20..=219 bytes encoded, so items wrap the ring at varying offsets).
type QItem = (u64, u64, Vec<u8>);

fn q_item(producer: u64, seq: u64) -> QItem {
    let len = ((seq.wrapping_mul(37) + producer) % 200) as usize;
    (producer, seq, vec![(seq as u8) ^ (producer as u8); len])
}

/// Child: put `(id, 0), (id, 1), ...` until killed (a put that cannot proceed for
/// BOUND ends it).
fn q_produce(args: (Queue<QItem>, u64)) {
    let (q, id) = args;
    for seq in 0.. {
        if q.put_timeout(&q_item(id, seq), BOUND).is_err() {
            return;
        }
    }
}

/// `Queue` producers SIGKILLed at random points while they put through a 4 KiB ring
/// (so most kills land inside a put: holding the claim lock, mid-copy, between publish
/// and unlock). The parent puts its own items between kills — its handle resumes its
/// parked ring core only when nobody else produced since, and a lock taken over from a
/// dead holder always re-attaches — and consumes. Every producer's items arrive as a
/// gap-free prefix 0, 1, 2, ..., intact, the parent's all of them, and nothing is left.
#[test]
fn queue_claim_lock_holders_killed_at_random_points() {
    claim_lock_holders_killed(
        fixed_queue,
        "queue_claim_lock_holders_killed_at_random_points",
    );
}

/// The same on a growing queue (bounded in items so that it keeps moving): pages are
/// reserved and given back every 4 KiB, so kills also land while a producer reserves
/// pages, or while a consumer holding both locks gives pages back.
#[test]
fn growing_queue_claim_lock_holders_killed_at_random_points() {
    claim_lock_holders_killed(
        growing_queue,
        "growing_queue_claim_lock_holders_killed_at_random_points",
    );
}

/// After a drain, a queue holds at most its registry, ring header, a 4 KiB ring (fixed)
/// and a few partial pages (growing: everything else was given back, kills or not).
fn assert_memory_given_back(name: &str) {
    use std::os::unix::fs::MetadataExt;
    let held = std::fs::metadata(format!("/dev/shm/{name}"))
        .unwrap()
        .blocks()
        * 512;
    assert!(
        held <= (REGISTRY + (64 << 10)) as u64,
        "{held} bytes held after the drain"
    );
}

/// A 4 KiB fixed ring.
fn fixed_queue(name: &str) -> Queue<QItem> {
    Queue::<QItem>::create(name, 4096).unwrap()
}

/// A 4 KiB fixed ring whose sides busy-poll.
fn busy_poll_queue(name: &str) -> Queue<QItem> {
    Queue::<QItem>::builder()
        .name(name)
        .capacity_bytes(4096)
        .wait(WaitStrategy::BusyPoll)
        .create()
        .unwrap()
}

/// A growing ring (as `growing_queue`) whose sides back off.
fn backoff_queue(name: &str) -> Queue<QItem> {
    Queue::<QItem>::builder()
        .name(name)
        .growth_step(4096)
        .maxsize(24)
        .wait(WaitStrategy::Backoff)
        .create()
        .unwrap()
}

/// A growing ring that reserves and gives back 4 KiB at a time, at most 24 items.
fn growing_queue(name: &str) -> Queue<QItem> {
    Queue::<QItem>::builder()
        .name(name)
        .growth_step(4096)
        .maxsize(24)
        .create()
        .unwrap()
}

fn claim_lock_holders_killed(new_queue: fn(&str) -> Queue<QItem>, test: &str) {
    let kills = torture(200) / 4;
    let mut rng = Rng::new(test);
    let name = unique("kill-queue");
    let q = new_queue(&name);
    let mut next = std::collections::HashMap::<u64, u64>::new();
    let (mut own_put, mut received, mut takeovers) = (0u64, 0u64, 0u64);
    let mut check = |it: QItem, next: &mut std::collections::HashMap<u64, u64>| {
        let (p, seq, _) = it;
        assert_eq!(it, q_item(p, seq), "torn or corrupted item");
        let n = next.entry(p).or_insert(0);
        assert_eq!(seq, *n, "producer {p}: gap-free, each once, in order");
        *n += 1;
        received += 1;
    };
    for id in 1..=kills {
        let child = shmkit_process::spawn(q_produce, (q.try_clone().unwrap(), id)).unwrap();
        for _ in 0..rng.below(300) {
            // Our own item now and then (skipped while the ring is full).
            if rng.below(4) == 0 && q.try_put(&q_item(0, own_put)).is_ok() {
                own_put += 1;
            }
            match q.get_timeout(BOUND) {
                Ok(it) => check(it, &mut next),
                Err(e) => panic!("producer {id}: {e}"),
            }
        }
        child.kill().unwrap();
        join_killed(child);
        // Right after the death, put: the lock may still name the dead child.
        let t0 = Instant::now();
        loop {
            match q.try_put(&q_item(0, own_put)) {
                Ok(()) => break,
                Err(TrySendError::Full) => check(q.get_timeout(BOUND).unwrap(), &mut next),
                Err(e) => panic!("put after kill {id}: {e}"),
            }
            assert!(t0.elapsed() < BOUND, "put after a kill bounded");
        }
        own_put += 1;
        takeovers += 1;
    }
    // Drain: everything committed, then empty (the children are all dead).
    loop {
        match q.get_timeout(Duration::from_millis(100)) {
            Ok(it) => check(it, &mut next),
            Err(Error::Timeout) | Err(Error::Disconnected) => break,
            Err(e) => panic!("drain: {e}"),
        }
    }
    assert!(q.is_empty(), "nothing left behind");
    assert_memory_given_back(&name);
    assert_eq!(
        next.get(&0).copied().unwrap_or(0),
        own_put,
        "every own item once"
    );
    eprintln!(
        "queue producer kills survived: {kills}, items verified: {received}, puts right \
         after a kill: {takeovers}"
    );
    drop(q);
    assert_unlinked(&name);
}

// --- 2. kill tests: Queue consumers killed holding the claim lock ----------------------

/// Child: take items and set each one's bit in the bitmap segment (word 0 counts bits
/// that were set already: an item delivered twice) until killed.
fn q_consume(args: (Queue<QItem>, String)) {
    let (q, bitmap) = args;
    let seg = Segment::open(&bitmap).unwrap();
    while let Ok(it) = q.get_timeout(BOUND) {
        let (p, seq, _) = it;
        assert_eq!(it, q_item(p, seq), "torn or corrupted item");
        let word = seg.atomic_u64(8 + (seq / 64) as usize * 8).unwrap();
        if word.fetch_or(1 << (seq % 64), Ordering::SeqCst) & (1 << (seq % 64)) != 0 {
            seg.atomic_u64(0).unwrap().fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// `Queue` consumers SIGKILLed at random points while they take items from a 4 KiB ring
/// (most kills land inside a get: holding the claim lock, mid-decode, between release
/// and unlock), while the parent produces and consumes too. No item is delivered twice,
/// every item is intact, the parent sees its share in order, and at most one item per
/// kill is unaccounted for (taken by a child that died before it could record it).
#[test]
fn busy_poll_queue_claim_lock_holders_killed_at_random_points() {
    claim_lock_holders_killed(
        busy_poll_queue,
        "busy_poll_queue_claim_lock_holders_killed_at_random_points",
    );
}

#[test]
fn backoff_queue_claim_lock_holders_killed_at_random_points() {
    claim_lock_holders_killed(
        backoff_queue,
        "backoff_queue_claim_lock_holders_killed_at_random_points",
    );
}

#[test]
fn busy_poll_queue_consumers_killed_holding_the_claim_lock() {
    consumers_killed(
        busy_poll_queue,
        "busy_poll_queue_consumers_killed_holding_the_claim_lock",
    );
}

#[test]
fn backoff_queue_consumers_killed_holding_the_claim_lock() {
    consumers_killed(
        backoff_queue,
        "backoff_queue_consumers_killed_holding_the_claim_lock",
    );
}

#[test]
fn queue_consumers_killed_holding_the_claim_lock() {
    consumers_killed(fixed_queue, "queue_consumers_killed_holding_the_claim_lock");
}

/// The same on a growing queue (see `growing_queue`): kills also land while a consumer
/// holds both claim locks to give pages back.
#[test]
fn growing_queue_consumers_killed_holding_the_claim_lock() {
    consumers_killed(
        growing_queue,
        "growing_queue_consumers_killed_holding_the_claim_lock",
    );
}

fn consumers_killed(new_queue: fn(&str) -> Queue<QItem>, test: &str) {
    let kills = torture(200) / 4;
    let mut rng = Rng::new(test);
    let name = unique("kill-queue-get");
    let bitmap = unique("kill-queue-bitmap");
    let total = kills * 400 + 1000;
    let q = new_queue(&name);
    let bits = Segment::create(&bitmap, 8 + total.div_ceil(64) as usize * 8).unwrap();
    let (mut next, mut ours, mut last_ours) = (0u64, Vec::new(), None::<u64>);
    let mut take = |q: &Queue<QItem>, ours: &mut Vec<u64>, timeout| match q.get_timeout(timeout) {
        Ok(it) => {
            let (p, seq, _) = it;
            assert_eq!(it, q_item(p, seq), "torn or corrupted item");
            assert!(
                last_ours.is_none_or(|l| seq > l),
                "FIFO: {seq} after {last_ours:?}"
            );
            last_ours = Some(seq);
            ours.push(seq);
        }
        // The children only get, so they are not producers: once the queue is empty
        // and the parent (the only producer) asks, nobody else can put.
        Err(Error::Timeout) | Err(Error::Disconnected) => {}
        Err(e) => panic!("{e}"),
    };
    for _ in 0..kills {
        let child =
            shmkit_process::spawn(q_consume, (q.try_clone().unwrap(), bitmap.clone())).unwrap();
        // Put a random number of items while the child takes most of them.
        let (target, t0) = ((next + rng.below(400)).min(total), Instant::now());
        while next < target && t0.elapsed() < BOUND {
            match q.try_put(&q_item(0, next)) {
                Ok(()) => next += 1,
                Err(TrySendError::Full) => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
            if rng.below(8) == 0 {
                take(&q, &mut ours, Duration::ZERO);
            }
        }
        child.kill().unwrap();
        join_killed(child);
        // Right after the death: the get lock may still name the dead child.
        take(&q, &mut ours, Duration::from_millis(1));
    }
    // The rest, with the parent as the only consumer left.
    while next < total {
        match q.try_put(&q_item(0, next)) {
            Ok(()) => next += 1,
            Err(TrySendError::Full) => take(&q, &mut ours, BOUND),
            Err(e) => panic!("{e}"),
        }
    }
    loop {
        let before = ours.len();
        take(&q, &mut ours, Duration::from_millis(100));
        if ours.len() == before {
            break;
        }
    }
    assert!(q.is_empty(), "nothing left behind");
    assert_memory_given_back(&name);
    let dups = bits.atomic_u64(0).unwrap().load(Ordering::SeqCst);
    assert_eq!(dups, 0, "an item was delivered twice to the children");
    let bit = |seq: u64| {
        let w = bits.atomic_u64(8 + (seq / 64) as usize * 8).unwrap();
        w.load(Ordering::SeqCst) & (1 << (seq % 64)) != 0
    };
    for &seq in &ours {
        assert!(
            !bit(seq),
            "item {seq} delivered to the parent and to a child"
        );
    }
    let children = (0..total).filter(|&s| bit(s)).count() as u64;
    let lost = total - children - ours.len() as u64;
    assert!(
        lost <= kills,
        "{lost} items unaccounted for after {kills} kills"
    );
    eprintln!(
        "queue consumer kills survived: {kills}, items: {total} ({} by the parent, \
         {children} by children, {lost} taken by a child as it was killed)",
        ours.len()
    );
    drop((q, bits));
    assert_unlinked(&name);
    assert_unlinked(&bitmap);
}
