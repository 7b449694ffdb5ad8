//! What every queue handle shares, whatever its items: registration in the queue's
//! handle table, the producer mark, `close`, `Drop`, cloning, and serialization for a
//! child process. Written once for both flavors ([`Queue`](crate::Queue)'s byte ring and
//! [`PodQueue`](crate::PodQueue)'s MPMC slots), as crossbeam-channel writes its
//! `Sender`/`Receiver` once over its flavors.
//!
//! # Handing a handle to a child
//! Serializing a handle reserves a handle slot for the receiver *in the process that
//! serializes* (so a queue that is full of handles is an error there, not a decode
//! error in the child), tied to the sender until the launcher names the receiving
//! process (`shmkit_segment::transit`), then to the receiver: pid and start time. The
//! child's `Deserialize` takes the reserved slot. If the child dies before it gets
//! there, the reservation lapses with it, and consumers see `Disconnected` instead of
//! waiting for a handle that will never arrive.

use crate::error::{Error, Result};
use crate::primitive::{AtomicU32, Ordering};
use crate::registry::{Registry, Ticket};
use crate::wait::WaitStrategy;
use serde::{Deserialize, Serialize, Serializer};
use shmkit_segment::{Kind, LivenessGuard, Segment, SegmentHandle};
use shmkit_sync::futex::SpinPolicy;
use shmkit_sync::wake::WakeWord;
use std::sync::{Arc, OnceLock};

/// The shared-memory queue behind a handle: how it is mapped and woken.
pub(crate) trait Flavor: Copy + Sized {
    /// Map and validate the queue in `seg` (called once the queue is ready).
    fn attach(seg: &Segment) -> Result<Self>;
    /// Whether handle slot `slot` may go to a new handle (the MPMC queue keeps a dead
    /// producer's slot while its intent may still be needed).
    fn accept(&self, _slot: u32) -> bool {
        true
    }
    /// Consumers sleep here waiting for data.
    fn data_wake(&self) -> &WakeWord;
    /// Producers sleep here waiting for space.
    fn space_wake(&self) -> &WakeWord;
    /// The header word recording the queue's wait strategy.
    fn strategy_word(&self) -> &AtomicU32;
}

/// A queue handle as it travels to another process.
#[derive(Serialize, Deserialize)]
pub(crate) struct Wire {
    segment: SegmentHandle,
    /// The handle slot reserved for the receiver.
    ticket: Ticket,
}

/// One registered handle of a queue.
#[derive(Debug)]
pub(crate) struct Handle<F: Flavor> {
    pub(crate) reg: Registry,
    guard: LivenessGuard,
    pub(crate) flavor: F,
    pub(crate) spin: SpinPolicy,
    /// The queue's wait strategy (from its header, validated at open).
    pub(crate) strategy: WaitStrategy,
    /// 1 once this handle has put (it is then a producer, see `Registry::mark_producer`).
    producing: AtomicU32,
    /// The slot reserved by serializing this handle: reserved once, however often it is
    /// serialized (an encoder may serialize twice: once to size, once to write).
    ticket: OnceLock<std::result::Result<Ticket, String>>,
}

impl<F: Flavor> Handle<F> {
    /// Open the queue `name`, a segment of `kind` for `T` items, as a new handle (the
    /// open checks the kind and the item type).
    pub(crate) fn open_named<T: 'static>(name: &str, kind: Kind) -> Result<Self> {
        let seg = Segment::builder(name).kind(kind).typed::<T>().open()?;
        Handle::open(Registry::new(Arc::new(seg))?, None)
    }

    /// A new handle of the queue in `reg`: the slot `ticket` reserved for us if it still
    /// is, else a free one.
    pub(crate) fn open(reg: Registry, ticket: Option<Ticket>) -> Result<Self> {
        reg.wait_ready()?;
        let flavor = F::attach(&reg.seg)?;
        let strategy = WaitStrategy::load(flavor.strategy_word(), reg.seg.name())?;
        let guard = match ticket.and_then(|t| reg.take_transit(t)) {
            Some(g) => g,
            None => reg.register(|slot| flavor.accept(slot))?,
        };
        Ok(Handle {
            reg,
            guard,
            flavor,
            spin: SpinPolicy::DEFAULT,
            strategy,
            producing: AtomicU32::new(0),
            ticket: OnceLock::new(),
        })
    }

    /// The handle made from a [`Wire`] (a child's `Deserialize`).
    pub(crate) fn from_wire(wire: Wire) -> Result<Self> {
        let seg = wire.segment.open()?;
        Self::open(Registry::new(Arc::new(seg))?, Some(wire.ticket))
    }

    /// Another handle of the same queue (a new slot).
    pub(crate) fn try_clone(&self) -> Result<Self> {
        let mut h = Self::open(
            Registry {
                seg: Arc::clone(&self.reg.seg),
            },
            None,
        )?;
        h.spin = self.spin;
        Ok(h)
    }

    /// Check that this handle may put, and count it as a producer from now on.
    pub(crate) fn before_put(&self) -> Result<()> {
        let me = self.slot();
        if self.reg.is_closed(me) {
            return Err(Error::Closed);
        }
        // Relaxed: a local flag; the shared mark is idempotent.
        if self.producing.load(Ordering::Relaxed) == 0 {
            self.reg.mark_producer(me);
            self.producing.store(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// This handle will put no more items.
    pub(crate) fn close(&self) {
        self.reg.close(self.slot());
        // Whatever the strategy: a closing is rare, and a sleeper must see it.
        self.flavor.data_wake().notify();
    }

    /// Serialize for another process, reserving the receiver's slot (see the module
    /// docs).
    pub(crate) fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let ticket = self.ticket.get_or_init(|| {
            let flavor = self.flavor;
            let t = self
                .reg
                .reserve_transit(|slot| flavor.accept(slot))
                .map_err(|e| e.to_string())?;
            let seg = Arc::clone(&self.reg.seg);
            shmkit_segment::transit::on_receiver(move |receiver| {
                Registry { seg }.bind_receiver(t, receiver)
            });
            Ok(t)
        });
        let ticket = ticket.clone().map_err(|why| {
            shmkit_segment::transit::refuse(why.clone());
            serde::ser::Error::custom(why)
        })?;
        Wire {
            segment: self.reg.seg.handle(),
            ticket,
        }
        .serialize(s)
    }
}

impl<F: Flavor> Handle<F> {
    pub(crate) fn slot(&self) -> u32 {
        self.guard.slot()
    }

    pub(crate) fn name(&self) -> &str {
        self.reg.seg.name()
    }
}

impl<F: Flavor> Drop for Handle<F> {
    fn drop(&mut self) {
        self.reg.unregister(self.slot());
        self.flavor.data_wake().notify();
        self.flavor.space_wake().notify();
    }
}
