//! The blocking halves every SPSC-based type is made of: a sending end and a
//! receiving end of one ring in a segment, with the peer's liveness and the futex
//! sleep/wake protocol of [`crate::wait`].

use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::raw::RawError;
use crate::raw::spsc::{self, ConsumerCore, ProducerCore, Ring, SpscHeader};
use crate::wait::{SLICE, WaitStrategy};
use shmkit_segment::Segment;
use shmkit_segment::transit::ProcessId;
use shmkit_sync::futex::{Deadline, SpinPolicy};
use std::sync::Arc;
use std::time::Duration;

/// Side state: nobody attached yet, or the handle is being sent to another process.
pub(crate) const STATE_NONE: u32 = 0;
/// Side state: a participant holds the role (its liveness slot says whether it lives).
pub(crate) const STATE_ATTACHED: u32 = 1;
/// Side state: the participant dropped or closed its handle.
pub(crate) const STATE_CLOSED: u32 = 2;

/// The ring at byte `offset` of `seg`'s payload, whose data area is `cap` bytes.
pub(crate) fn ring_at(seg: &Segment, offset: usize, cap: u64) -> Result<Ring> {
    if !spsc::valid_capacity(cap) {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!(
                "a payload of {} bytes implies a data area of {cap} bytes at offset {offset}, not a power of two in 32..=2^40",
                seg.len()
            ),
        });
    }
    let end = offset
        .checked_add(spsc::HEADER_BYTES)
        .and_then(|o| o.checked_add(cap as usize));
    if end.is_none_or(|e| e > seg.len()) || !offset.is_multiple_of(128) {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!(
                "ring at offset {offset} with capacity {cap} does not fit a payload of {}",
                seg.len()
            ),
        });
    }
    // SAFETY: the range [offset, offset + 384 + cap) lies inside the mapping (checked
    // above against the mapping's own length): `offset` is in bounds.
    let base = unsafe { seg.as_ptr().add(offset) };
    // SAFETY: HEADER_BYTES (384) <= 384 + cap: still inside that range.
    let data = unsafe { base.add(spsc::HEADER_BYTES) };
    // SAFETY: header and data lie inside the mapping (above); the payload base is
    // 128-aligned and `offset` is a multiple of 128, so the header is aligned and the
    // data 8-aligned. Every caller keeps the `Segment` (an `Arc`) alive as long as the
    // ring is used.
    let ring = unsafe { Ring::new(base.cast::<SpscHeader>(), data, cap) };
    let stored = ring.header().meta.capacity.load(Ordering::Acquire);
    // Invariant restored: the header's capacity (0 until the creator initialises it)
    // agrees with the capacity the mapping's size implies.
    if stored != 0 && stored != cap {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!("header says capacity {stored}, segment size implies {cap}"),
        });
    }
    Ok(ring)
}

/// What a handle knows about its peer role.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) slot: u32,
    /// Whether the peer is the producer of this ring (we are its consumer).
    pub(crate) is_producer: bool,
}

fn state_word(ring: &Ring, producer: bool) -> &AtomicU32 {
    let m = &ring.header().meta;
    if producer {
        &m.producer_state
    } else {
        &m.consumer_state
    }
}

/// The peer-role receiver words: pid and start time of the process a handed-over role
/// is on its way to.
fn receiver_words(ring: &Ring, producer: bool) -> (&AtomicU32, &AtomicU64) {
    let m = &ring.header().meta;
    if producer {
        (&m.producer_receiver, &m.producer_receiver_start)
    } else {
        (&m.consumer_receiver, &m.consumer_receiver_start)
    }
}

/// Give a role up for another process to take (`transfer()`): the state goes to `none`,
/// so the peer waits for the new holder instead of seeing a disconnection; until
/// [`tie_to_receiver`] names that holder, the role is tied to this process.
pub(crate) fn hand_over(ring: &Ring, producer: bool) {
    receiver_words(ring, producer).0.store(0, Ordering::Relaxed);
    set_state(ring, producer, STATE_NONE);
}

/// While a role given up by [`hand_over`] is serialized for a child: once
/// `shmkit_process::spawn` names the child that is to take it, tie the role to that
/// child (`shmkit_segment::transit`), so that a child killed before it takes the role
/// does not leave the peer waiting for ever.
pub(crate) fn tie_to_receiver(seg: &Arc<Segment>, ring: &Ring, producer: bool) {
    let (seg, ring) = (Arc::clone(seg), *ring);
    shmkit_segment::transit::on_receiver(move |receiver| {
        let _mapping = &seg; // keeps `ring`'s memory mapped
        if state_word(&ring, producer).load(Ordering::Acquire) != STATE_NONE {
            return; // taken already
        }
        let (pid, start) = receiver_words(&ring, producer);
        start.store(receiver.start_time, Ordering::Relaxed);
        // SYNC: Release, paired with the Acquire in `peer_gone`. A child that never
        // started (pid 0) is recorded as u32::MAX: gone.
        let p = if receiver.pid == 0 {
            u32::MAX
        } else {
            receiver.pid
        };
        pid.store(p, Ordering::Release);
    });
}

/// Whether a role handed over (state `none`) went to a process that died before it
/// took the role.
fn receiver_died(ring: &Ring, producer: bool) -> bool {
    let (pid, start) = receiver_words(ring, producer);
    match pid.load(Ordering::Acquire) {
        0 => false,
        u32::MAX => true,
        p => !ProcessId {
            pid: p,
            start_time: start.load(Ordering::Relaxed),
        }
        .is_running(),
    }
}

/// Whether the peer is gone. `full`: also ask the kernel whether its liveness lock is
/// held (a syscall); otherwise only its state word is read.
#[inline]
pub(crate) fn peer_gone(seg: &Segment, ring: &Ring, peer: Peer, full: bool) -> bool {
    let word = state_word(ring, peer.is_producer);
    // Acquire, paired with the Release in `set_state`: the peer's last publication
    // before it closed is visible to the drain that follows.
    let s1 = word.load(Ordering::Acquire);
    match s1 {
        STATE_CLOSED => true,
        _ if !full => false,
        _ => peer_gone_ask_kernel(seg, ring, peer, s1),
    }
}

/// The slow half of [`peer_gone`]: the peer has not closed; ask the kernel whether it
/// lives (state `s1`, as just read).
#[cold]
fn peer_gone_ask_kernel(seg: &Segment, ring: &Ring, peer: Peer, s1: u32) -> bool {
    let word = state_word(ring, peer.is_producer);
    match s1 {
        STATE_ATTACHED => {
            let alive = seg.is_alive(peer.slot).unwrap_or(true);
            // A handle being handed to another process switches ATTACHED -> NONE before
            // releasing its lock: re-read so that window is not taken for a death.
            !alive && word.load(Ordering::Acquire) == s1
        }
        // Handed to a child that died before it took the role: re-read the state, as
        // above, so a take-over in progress is not taken for a death.
        STATE_NONE => receiver_died(ring, peer.is_producer) && word.load(Ordering::Acquire) == s1,
        _ => false,
    }
}

pub(crate) fn set_state(ring: &Ring, producer: bool, state: u32) {
    // SYNC: Release, paired with the Acquire in `peer_gone`.
    state_word(ring, producer).store(state, Ordering::Release);
}

/// Wake everybody sleeping on this ring (after a state change the peer must notice).
pub(crate) fn wake_all(ring: &Ring) {
    // Whatever the strategy: closing is rare, and a waiter that is asleep must see it.
    let m = &ring.header().meta;
    m.data_wake.notify();
    m.space_wake.notify();
}

/// The side a receiver waits for (data), for the async forms.
#[cfg(feature = "internals")]
pub(crate) fn data_side(seg: &Segment, ring: Ring, peer: Peer) -> crate::wait_side::WaitSide<'_> {
    use crate::wait_side::{WaitSide, Words};
    WaitSide::new(
        Words::Ring(ring, true),
        move || ring.has_data(),
        move || peer_gone(seg, &ring, peer, true),
    )
}

/// The side a sender of `len`-byte messages waits for (room), for the async forms.
#[cfg(feature = "internals")]
pub(crate) fn space_side(
    seg: &Segment,
    ring: Ring,
    peer: Peer,
    len: usize,
) -> crate::wait_side::WaitSide<'_> {
    use crate::wait_side::{WaitSide, Words};
    let rec = spsc::record_len(len as u64);
    let cap = ring.capacity();
    WaitSide::new(
        Words::Ring(ring, false),
        move || ring.used_bytes() + rec <= cap,
        move || peer_gone(seg, &ring, peer, true),
    )
}

/// One side of one ring, over the side's core: what a producer ([`TxEnd`]) and a
/// consumer ([`RxEnd`]) hold alike.
#[derive(Debug)]
pub(crate) struct End<C> {
    pub(crate) seg: Arc<Segment>,
    pub(crate) ring: Ring,
    pub(crate) core: C,
    pub(crate) peer: Peer,
    pub(crate) spin: SpinPolicy,
    /// The ring's wait strategy (from its header, validated at attach).
    pub(crate) strategy: WaitStrategy,
}

/// The sending half of one ring.
pub(crate) type TxEnd = End<ProducerCore>;
/// The receiving half of one ring.
pub(crate) type RxEnd = End<ConsumerCore>;

/// The core of one side of a ring, as an [`End`] attaches it.
pub(crate) trait SideCore: Sized {
    /// Whether this is the producing side.
    const PRODUCER: bool;
    /// Attach to `ring` (checks the ring's positions).
    fn attach_core(ring: Ring) -> Result<Self, RawError>;
}

impl SideCore for ProducerCore {
    const PRODUCER: bool = true;
    fn attach_core(ring: Ring) -> Result<Self, RawError> {
        ProducerCore::attach(ring)
    }
}

impl SideCore for ConsumerCore {
    const PRODUCER: bool = false;
    fn attach_core(ring: Ring) -> Result<Self, RawError> {
        ConsumerCore::attach(ring)
    }
}

impl<C: SideCore> End<C> {
    /// Take this side of `ring`; the peer's liveness is slot `peer_slot`.
    pub(crate) fn attach(seg: Arc<Segment>, ring: Ring, peer_slot: u32) -> Result<Self> {
        let core = C::attach_core(ring).map_err(|e| Error::from_raw(seg.name(), e))?;
        let strategy = WaitStrategy::load(&ring.header().meta.wait_strategy, seg.name())?;
        receiver_words(&ring, C::PRODUCER)
            .0
            .store(0, Ordering::Relaxed);
        set_state(&ring, C::PRODUCER, STATE_ATTACHED);
        Ok(End {
            seg,
            ring,
            core,
            peer: Peer {
                slot: peer_slot,
                is_producer: !C::PRODUCER,
            },
            spin: SpinPolicy::DEFAULT,
            strategy,
        })
    }

    fn err(&self, e: RawError) -> Error {
        Error::from_raw(self.seg.name(), e)
    }

    #[inline]
    pub(crate) fn peer_gone(&self, full: bool) -> bool {
        peer_gone(&self.seg, &self.ring, self.peer, full)
    }

    /// This side is done: say so in the ring, and wake both sides' sleepers.
    pub(crate) fn close(&mut self) {
        set_state(&self.ring, C::PRODUCER, STATE_CLOSED);
        wake_all(&self.ring);
    }
}

impl TxEnd {
    /// After a publication of `tail` (a SeqCst store).
    #[inline]
    pub(crate) fn notify(&self) {
        self.strategy.notify(&self.ring.header().meta.data_wake);
    }

    #[inline]
    pub(crate) fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        if self.peer_gone(false) {
            return Err(Error::Disconnected);
        }
        self.core.try_send(msg).map_err(|e| self.err(e))?;
        self.notify();
        Ok(())
    }

    /// Wait until `len` bytes can be reserved (or the peer is gone / time is up).
    pub(crate) fn wait_room(&mut self, len: usize, dl: Deadline) -> Result<()> {
        let max = self.ring.max_message();
        if len > max {
            return Err(Error::TooLarge {
                name: self.seg.name().to_owned(),
                len,
                max,
            });
        }
        let rec = spsc::footprint(len as u64);
        let cap = self.ring.capacity();
        // Ask the kernel about the peer's liveness only after a sleep
        // that nobody cut short: a live peer that keeps waking us costs no syscall.
        let mut ask_kernel = false;
        loop {
            if self.core.can_reserve(len).map_err(|e| self.err(e))? {
                return Ok(());
            }
            if self.peer_gone(ask_kernel) {
                return Err(Error::Disconnected);
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            let ring = self.ring;
            let fits = move || ring.used_bytes() + rec <= cap;
            if self.strategy.spin_before_park(self.spin).spin_until(fits) {
                continue;
            }
            ask_kernel = self.strategy.park(
                &self.ring.header().meta.space_wake,
                move || ring.used_bytes() + rec <= cap,
                dl.slice(SLICE),
            );
        }
    }

    /// Send, waiting at most `timeout` (`None`: forever). The deadline (a clock read)
    /// is only computed once the fast path failed.
    #[inline]
    pub(crate) fn send(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        if self.peer_gone(false) {
            return Err(Error::Disconnected);
        }
        match self.core.try_send(msg) {
            Ok(()) => {
                self.notify();
                return Ok(());
            }
            Err(RawError::Full) => {}
            Err(e) => return Err(self.err(e)),
        }
        let dl = Deadline::after(timeout);
        loop {
            self.wait_room(msg.len(), dl)?;
            match self.core.try_send(msg) {
                Ok(()) => {
                    self.notify();
                    return Ok(());
                }
                Err(RawError::Full) => continue,
                Err(e) => return Err(self.err(e)),
            }
        }
    }
}

impl RxEnd {
    /// After a publication of `head` (a SeqCst store).
    #[inline]
    pub(crate) fn notify(&self) {
        self.strategy.notify(&self.ring.header().meta.space_wake);
    }

    /// Copy one message out if there is one: `Ok(false)` if empty.
    #[inline]
    pub(crate) fn poll_once(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        let before = self.core.position();
        match self.core.try_recv(out) {
            Ok(()) => {
                self.notify();
                Ok(true)
            }
            Err(RawError::Empty) => {
                // Skipping padding moved `head` too: let a waiting producer see it.
                if self.core.position() != before {
                    self.notify();
                }
                Ok(false)
            }
            Err(e) => Err(self.err(e)),
        }
    }

    #[inline]
    pub(crate) fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.poll_once(out)? {
            return Ok(());
        }
        if self.peer_gone(false) {
            // Drain first: the peer's last messages were published before its state.
            if self.poll_once(out)? {
                return Ok(());
            }
            return Err(Error::Disconnected);
        }
        Err(Error::Empty)
    }

    /// Wait until a message is available; `Ok(true)` if one is, `Ok(false)` if the
    /// peer is gone and the ring drained.
    pub(crate) fn wait_data(&mut self, dl: Deadline) -> Result<bool> {
        // As in `TxEnd::wait_room`: the kernel is asked only after timed-out sleeps.
        let mut ask_kernel = false;
        loop {
            if self.ring.has_data() {
                return Ok(true);
            }
            if self.peer_gone(ask_kernel) {
                // Drain: whatever was committed before the peer went is still read.
                return Ok(self.ring.has_data());
            }
            if dl.expired() {
                return Err(Error::Timeout);
            }
            let ring = self.ring;
            if self
                .strategy
                .spin_before_park(self.spin)
                .spin_until(move || ring.has_data())
            {
                return Ok(true);
            }
            ask_kernel = self.strategy.park(
                &self.ring.header().meta.data_wake,
                move || ring.has_data(),
                dl.slice(SLICE),
            );
        }
    }

    /// Receive, waiting at most `timeout` (`None`: forever). The deadline (a clock
    /// read) is only computed once the fast path found nothing.
    #[inline]
    pub(crate) fn recv(&mut self, out: &mut Vec<u8>, timeout: Option<Duration>) -> Result<()> {
        if self.poll_once(out)? {
            return Ok(());
        }
        let dl = Deadline::after(timeout);
        loop {
            if self.poll_once(out)? {
                return Ok(());
            }
            if !self.wait_data(dl)? {
                // The peer is gone; one last look (padding may hide the final records).
                if self.poll_once(out)? {
                    return Ok(());
                }
                return Err(Error::Disconnected);
            }
        }
    }
}
