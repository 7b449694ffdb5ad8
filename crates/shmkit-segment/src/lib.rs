//! Named and anonymous shared-memory segments with a checked header — the foundation
//! every other shmkit crate builds on.
//!
//! ```
//! use shmkit_segment::Segment;
//!
//! let name = format!("shmkit-doc-segment-{}", std::process::id());
//! let seg = Segment::create(&name, 4096)?;          // /dev/shm/<name>, mode 0600
//! seg.write(0, &42u64)?;
//!
//! let other = Segment::open(&name)?;                // another process would do this
//! assert_eq!(other.read::<u64>(0)?, 42);
//! drop(other);
//! drop(seg);                                        // the creator unlinks on drop
//! assert!(matches!(Segment::open(&name), Err(shmkit_segment::Error::NotFound { .. })));
//! # Ok::<(), shmkit_segment::Error>(())
//! ```
//!
//! Every segment starts with a 256-byte [header](HEADER_SIZE): magic, layout version,
//! [`Kind`], [`TypeFingerprint`], payload size, creator pid and start time, and a `ready`
//! word published last. [`Segment::open`] checks all of it and says exactly what did not
//! match. Headerless [`RawSegment`]s interoperate with other runtimes such as Python's
//! `multiprocessing.shared_memory`.
//!
//! Liveness ([`Segment::hold_liveness`], [`Segment::is_alive`], [`Segment::is_stale`])
//! rests on open-file-description locks that the kernel releases when a process dies,
//! never on a bare pid:
//!
//! ```
//! use shmkit_segment::Segment;
//!
//! let seg = Segment::anonymous(64)?;
//! let peer = seg.try_clone()?;                  // as a child process would
//! let me = peer.claim_liveness_slot(0..8)?;     // register: the first free slot
//! assert!(seg.is_alive(me.slot())?);
//! drop(me);                                     // or the process dies: the kernel frees it
//! assert!(!seg.is_alive(0)?);
//! # Ok::<(), shmkit_segment::Error>(())
//! ```
//!
//! Cleaning up after crashed programs ([`list`], what `shmkit ls` and `shmkit rm --stale`
//! show):
//!
//! ```
//! for info in shmkit_segment::list()? {
//!     if info.state == shmkit_segment::SegmentState::Stale {
//!         println!("{} was left behind by pid {:?}", info.name, info.creator.map(|c| c.pid));
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Processes and `fork()`
//!
//! A child started by re-executing the program (shmkit-process's `Spawn`) reaches a
//! segment through its [`SegmentHandle`] (serde), which names the segment or, for an
//! anonymous one, `/proc/<pid>/fd/<n>` of its parent. A child made with `fork()` may also
//! use the `Segment` values it inherited: the first liveness call in the child opens an
//! open file description of its own, and the child's copies never release the parent's
//! locks or unlink the parent's names.
//!
//! # Not guarded
//!
//! A process with write access to a *named* segment's file can truncate it; the other
//! processes then get `SIGBUS` when they touch the cut-off pages (Linux offers seals only
//! for memfds, which is what anonymous segments are). Give wider modes than `0600` only
//! to processes you trust with the data.
#![doc(html_root_url = "https://docs.rs/shmkit-segment/0.1.0/")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod builder;
mod error;
mod handle;
mod header;
mod kind;
mod list;
mod liveness;
mod name;
mod open;
mod primitive;
mod raw;
mod segment;
mod sparse;
mod sys;
pub mod transit;
mod travel;

pub use builder::{DEFAULT_OPEN_TIMEOUT, SegmentBuilder};
pub use error::{Error, Result};
pub use handle::SegmentHandle;
pub use header::{HEADER_SIZE, LAYOUT_VERSION, MAGIC};
pub use kind::{Kind, TypeFingerprint};
pub use list::{SegmentInfo, SegmentState, inspect, list};
pub use liveness::{LIVENESS_BASE, LivenessGuard};
pub use name::{MAX_NAME_LEN, remove, validate_name};
pub use raw::RawSegment;
pub use segment::{CreatorInfo, Segment};
pub use travel::{MAX_DESCRIPTORS, collect_descriptors, with_descriptors};
