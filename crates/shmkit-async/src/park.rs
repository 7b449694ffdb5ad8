//! [`Park`]: what a pending future keeps between polls — its registration with the waker
//! thread, and when it last asked whether its peer lives — and the poll loop every ring
//! wait shares ([`poll_side`]).

use crate::primitive::AtomicU32;
use crate::reactor::{Registration, SLICE};
use shmkit_ring::wait_side::WaitSide;
use shmkit_ring::{Error, Result};
use shmkit_sync::SpinPolicy;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The most a wait spins (checks and `sched_yield`s) on a runtime thread before it
/// sleeps: on a loaded machine each yield can hand the core away for a whole time slice,
/// and the runtime's other tasks wait meanwhile.
pub(crate) const SPIN_CAP: Duration = Duration::from_micros(100);

/// Times a poll re-tries after the re-check said "ready" but the operation still found
/// nothing (another consumer was faster, or only padding was there) before it yields to
/// the runtime instead of spinning.
const RETRIES: usize = 4;

/// A pending future's wait state (see the module docs). Dropping it deregisters.
#[derive(Debug)]
pub(crate) struct Park {
    reg: Registration,
    /// When the peer's liveness was last checked (or the first sleep began).
    checked: Option<Instant>,
    spin: SpinPolicy,
    /// Whether this wait has spun already.
    spun: bool,
}

impl Park {
    /// A wait that spins and yields per `spin` before it sleeps.
    pub(crate) fn new(spin: SpinPolicy) -> Self {
        Park {
            reg: Registration::default(),
            checked: None,
            spin,
            spun: false,
        }
    }

    /// Before the first sleep: spin (and yield the thread) per the policy until `ready`
    /// holds, as the blocking waits do ([`SpinPolicy::spin_until`]), but for at most
    /// [`SPIN_CAP`] of the runtime thread; `true` if it held. Later polls (woken from a
    /// sleep) go straight to sleep if not ready.
    pub(crate) fn spin(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        if self.spun {
            return false;
        }
        self.spun = true;
        if self.spin.spins == 0 && self.spin.yields == 0 {
            return false;
        }
        // The clock only once the spins are spent and the yields begin (a vDSO read is
        // cheap, not free: a consumer that catches up is usually ready within the
        // spins); then after every yield, which costs far more than the read.
        let spins = self.spin.spins;
        let mut start: Option<Instant> = None;
        let mut n = 0u32;
        self.spin.spin_until(|| {
            if ready() {
                return true;
            }
            n = n.wrapping_add(1);
            if n <= spins {
                return false;
            }
            let t = *start.get_or_insert_with(Instant::now);
            t.elapsed() >= SPIN_CAP
        }) && ready()
    }

    /// Sleep until `word` leaves `val` (the task is woken then, or after a slice).
    /// `Poll::Pending` either way: if the word already moved, the task is woken at once.
    pub(crate) fn sleep<T>(&mut self, word: &AtomicU32, val: u32, cx: &mut Context<'_>) -> Poll<T> {
        if !self.reg.park(word, val, cx.waker()) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Whether to ask the kernel whether the peer lives now: before the first sleep,
    /// then once a slice has passed since the last check (the count restarts). Cheap: a
    /// clock read.
    pub(crate) fn liveness_due(&mut self) -> bool {
        match self.checked {
            Some(t) if t.elapsed() < SLICE => false,
            _ => {
                self.checked = Some(Instant::now());
                true
            }
        }
    }

    /// The wait is over: leave the waker thread's table.
    #[inline]
    pub(crate) fn done(&mut self) {
        self.reg.clear();
        self.checked = None;
    }
}

/// A ring operation that may have to wait: the non-blocking attempt, and the ring side
/// to wait for when it finds nothing.
pub(crate) trait Wait {
    /// What the operation returns.
    type Output;
    /// The non-blocking operation: `Ok(None)` if it cannot be done now.
    fn attempt(&mut self) -> Result<Option<Self::Output>>;
    /// The side to wait for (built only on the slow path).
    fn side(&self) -> Result<WaitSide<'_>>;
    /// Whether the attempt may succeed now: what the pre-sleep spin checks. The default
    /// asks the side; an operation with a cheaper public check (`is_empty`) uses that,
    /// so that a consumer that keeps catching up with its producer builds no side.
    fn ready(&self) -> bool {
        self.side().map_or(true, |s| s.is_ready())
    }
}

/// One poll of `op`: [`attempt`](Wait::attempt); if it finds nothing, announce the task
/// to the side's wakers, re-check, and park on the side's word. Every `SLICE` it asks
/// whether the peer is gone ([`Error::Disconnected`] then, after a last attempt drains
/// what the peer committed).
///
/// The fast path (something there) is the attempt alone: no syscall, no registration.
/// Cancel safety: the attempt takes a message only in a poll that returns it.
pub(crate) fn poll_wait<W: Wait>(
    op: &mut W,
    park: &mut Park,
    cx: &mut Context<'_>,
) -> Poll<Result<W::Output>> {
    for _ in 0..RETRIES {
        if let Some(v) = op.attempt()? {
            park.done();
            return Poll::Ready(Ok(v));
        }
        if park.spin(|| op.ready()) {
            continue;
        }
        let side = op.side()?;
        if park.liveness_due() && side.peer_gone() {
            drop(side);
            park.done();
            return Poll::Ready(match op.attempt()? {
                Some(v) => Ok(v),
                None => Err(Error::Disconnected),
            });
        }
        if side.polls() {
            // A `BusyPoll` or `Backoff` ring: its publishers wake nobody, so the task
            // polls through the runtime (yielding to the other tasks between polls).
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(seq) = side.announce() {
            return park.sleep(side.word(), seq, cx);
        }
        // Ready by the re-check: attempt again.
    }
    // Ready by the re-check but nothing to take (another consumer was faster, or only
    // padding was there): let others run, then look again.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// The future of a ring wait. Its first poll is the attempt alone, with no wait state
/// at all: a streaming consumer takes nearly every message there, and an `async fn`
/// in its place moved its result and its state through memory on every message
/// (store-forwarding stalls, a third of an awaited 8-byte receive in `perf annotate`).
/// On the first miss it makes its [`Park`] and continues with [`poll_wait`]; dropping
/// it deregisters (cancel-safe as `poll_wait` is).
#[derive(Debug)]
pub(crate) struct WaitFuture<W> {
    op: W,
    spin: SpinPolicy,
    park: Option<Park>,
}

impl<W: Wait + Unpin> WaitFuture<W> {
    pub(crate) fn new(op: W, spin: SpinPolicy) -> Self {
        WaitFuture {
            op,
            spin,
            park: None,
        }
    }
}

impl<W: Wait + Unpin> std::future::Future for WaitFuture<W> {
    type Output = Result<W::Output>;

    #[inline]
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let park = match &mut this.park {
            Some(park) => park,
            None => {
                match this.op.attempt() {
                    Ok(Some(v)) => return Poll::Ready(Ok(v)),
                    Err(e) => return Poll::Ready(Err(e)),
                    Ok(None) => {}
                }
                this.park.insert(Park::new(this.spin))
            }
        };
        poll_wait(&mut this.op, park, cx)
    }
}

/// `Ok(None)` for the "not now" errors of a `try_` call.
pub(crate) fn not_now<T, E: Into<Error>>(r: std::result::Result<T, E>) -> Result<Option<T>> {
    match r.map_err(Into::into) {
        Ok(v) => Ok(Some(v)),
        Err(Error::Empty | Error::Full) => Ok(None),
        Err(e) => Err(e),
    }
}
