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

#[cfg(feature = "internals")]
use crate::wait_side::{WaitSide, Words};

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
    /// Whether an item is there to take (a snapshot).
    #[cfg(feature = "internals")]
    fn has_data(&self) -> bool;
    /// The wake words of one side of this queue, for a [`WaitSide`]: `data` the
    /// consumers', else the producers'.
    #[cfg(feature = "internals")]
    fn words(self, data: bool) -> Words<'static>;
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
    /// The handle a child's `Deserialize` reads (a [`Wire`]) and opens.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Self, D::Error> {
        let wire = Wire::deserialize(d)?;
        Self::from_wire(wire).map_err(serde::de::Error::custom)
    }

    /// The side `get` waits for: data to take, or no other handle left to put (for
    /// the async forms, feature `internals`).
    #[cfg(feature = "internals")]
    pub(crate) fn readable_side(&self) -> WaitSide<'_> {
        let flavor = self.flavor;
        WaitSide::new(
            flavor.words(true),
            move || flavor.has_data(),
            move || !self.reg.others_can_put(self.slot()),
        )
    }

    pub(crate) fn slot(&self) -> u32 {
        self.guard.slot()
    }

    pub(crate) fn name(&self) -> &str {
        self.reg.seg.name()
    }
}

/// `Clone`, `Serialize` and `Deserialize` of a queue type over a [`Handle`] (field `h`,
/// with `try_clone` and `from_handle`): one definition of how every queue handle is
/// cloned and handed to a child, whatever its items.
macro_rules! handle_impls {
    ($queue:ident where T: $($bound:tt)+) => {
        impl<T: $($bound)+> Clone for $queue<T> {
            /// Register another handle. Panics only if all
            /// [`MAX_HANDLES`](crate::MAX_HANDLES) slots are taken (`try_clone` returns
            /// that as an error).
            fn clone(&self) -> Self {
                self.try_clone()
                    .expect(concat!(stringify!($queue), "::clone: no free handle slot"))
            }
        }

        impl<T> serde::Serialize for $queue<T> {
            /// Another process gets its own handle, in a slot reserved now, in this
            /// process (so a queue with no free slot fails here, with
            /// [`TooManyHandles`](crate::Error::TooManyHandles) in the message). Until
            /// the receiver opens it, the reserved handle counts as a possible producer —
            /// for as long as the receiving process lives (or, sent outside
            /// `shmkit_process::spawn`, the sender).
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                self.h.serialize(s)
            }
        }

        impl<'de, T: $($bound)+> serde::Deserialize<'de> for $queue<T> {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                Self::from_handle($crate::queue::handle::Handle::deserialize(d)?)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use handle_impls;

impl<F: Flavor> Drop for Handle<F> {
    fn drop(&mut self) {
        self.reg.unregister(self.slot());
        self.flavor.data_wake().notify();
        self.flavor.space_wake().notify();
    }
}
