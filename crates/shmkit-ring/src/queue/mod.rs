//! The queues of many producers and consumers, one job per file (crossbeam-channel's
//! `flavors/` as the model):
//! - [`typed`]: [`Queue`], serde items over the byte ring, the counterpart of Python's
//!   `multiprocessing.Queue` / `JoinableQueue`;
//! - [`codec`]: how a `Queue` item becomes ring bytes and back (postcard, with byte
//!   buffers moved as bytes);
//! - [`pod`]: [`PodQueue`], its `Pod` fast path over lock-free MPMC slots;
//! - [`handle`]: what every handle of either shares, written once — registration in the
//!   handle table ([`crate::registry`]), the producer mark, `close`, `Drop`, cloning and
//!   serialization for a child process.
//!
//! # Who is a producer, and when `get` says `Disconnected`
//! A handle counts as a producer once it has put. A consumer's `get` on an empty queue
//! returns [`Error::Disconnected`](crate::Error::Disconnected) once no other handle can
//! put any more: every producing handle has closed, been dropped or died, no handle is
//! on its way to a live child, and somebody has put at all (on a fresh queue nobody
//! has, so every open handle still counts). Handles that only get never keep the queue
//! open, so N consumer processes each see `Disconnected` after the drain when the
//! producers are done, without sentinels and without closing their own handles.

mod builder;
#[cfg(feature = "internals")]
pub mod codec;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unreachable_pub)]
mod codec;
mod growth;
pub(crate) mod handle;
pub(crate) mod pod;
mod typed;

pub use builder::QueueBuilder;
pub use pod::{PodQueue, PodQueueBuilder};
pub use typed::{DEFAULT_QUEUE_CAPACITY, Queue};
