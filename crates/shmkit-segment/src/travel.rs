//! Anonymous segments travelling with the bytes that name them.
//!
//! An anonymous segment has no name to open: a [`SegmentHandle`](crate::SegmentHandle)
//! serialized on its own names `/proc/<pid>/fd/<n>` of the sending process, which opens
//! only while the sender still holds that descriptor. A launcher that sends the bytes
//! over a Unix socket (as `shmkit-process` does for a child's arguments) can do better:
//! it serializes inside [`collect_descriptors`], which gathers a descriptor of every
//! anonymous segment met on the way (the bytes then name an index into that
//! list), sends the list with `SCM_RIGHTS`, and the receiver deserializes inside
//! [`with_descriptors`]. The segment then reaches the child whatever the sender does
//! meanwhile: `spawn(f, Value::anonymous(0)?)` works though the value is dropped at once.
//!
//! ```
//! use shmkit_segment::{Segment, SegmentHandle, collect_descriptors, with_descriptors};
//! let seg = Segment::anonymous(16)?;
//! seg.write(0, &7u64)?;
//! let (bytes, fds) = collect_descriptors(|| postcard::to_allocvec(&seg.handle()));
//! drop(seg); // the sender's last handle: only the collected descriptor keeps it alive
//! let handle: SegmentHandle =
//!     with_descriptors(fds, || postcard::from_bytes(&bytes.unwrap())).unwrap();
//! assert_eq!(handle.open()?.read::<u64>(0)?, 7); // the handle holds its descriptor
//! # Ok::<(), shmkit_segment::Error>(())
//! ```

use std::cell::RefCell;
use std::os::fd::OwnedFd;

/// A collected descriptor and the file it is, (device, inode).
type Collected = (OwnedFd, (u64, u64));

thread_local! {
    static OUTGOING: RefCell<Option<Vec<Collected>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// The most descriptors one collection may carry: what one `SCM_RIGHTS` message holds
/// (the kernel's `SCM_MAX_FD`, 253), less one for a payload's own memfd.
pub const MAX_DESCRIPTORS: usize = 252;

/// Run `f` (a serialization), collecting a descriptor of every anonymous segment whose
/// [`SegmentHandle`](crate::SegmentHandle) it serializes; those handles are written as an
/// index into the returned list instead of a `/proc` path. Send the list along with the
/// bytes, and deserialize them inside [`with_descriptors`].
pub fn collect_descriptors<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let outer = OUTGOING.with(|o| o.replace(Some(Vec::new())));
    let r = f();
    let fds = OUTGOING
        .with(|o| o.replace(outer))
        .expect("set above, restored only here");
    (r, fds.into_iter().map(|(fd, _)| fd).collect())
}

/// Run `f` (a deserialization) with the descriptors that came with the bytes, so that
/// handles written by [`collect_descriptors`] find their segments. Handles decoded
/// inside `f` take their own copy of what they need; the list is closed when `f` returns.
pub fn with_descriptors<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let outer = INCOMING.with(|i| i.replace(Some(fds)));
    let r = f();
    INCOMING.with(|i| i.replace(outer));
    r
}

/// Inside [`collect_descriptors`]: the index of the file `file` (device, inode) in the
/// list, the descriptor `open` gives added if that file is not there yet (so a value
/// serialized twice — once to size it, once to write it — or naming one segment twice
/// sends it once, and opens it once). `None` outside a collection (`open` is not called),
/// when the list is full, or when `open` fails (the handle is then written as a `/proc`
/// path, as outside).
pub(crate) fn pass(file: (u64, u64), open: impl FnOnce() -> Option<OwnedFd>) -> Option<u32> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let list = o.as_mut()?;
        let index = match list.iter().position(|(_, f)| *f == file) {
            Some(i) => i,
            None if list.len() >= MAX_DESCRIPTORS => return None,
            None => {
                list.push((open()?, file));
                list.len() - 1
            }
        };
        u32::try_from(index).ok()
    })
}

/// Inside [`with_descriptors`]: a duplicate of the descriptor at `index`, for the handle
/// being decoded to hold. `None` if there is no such descriptor here.
pub(crate) fn received(index: u32) -> Option<OwnedFd> {
    INCOMING.with(|i| {
        let i = i.borrow();
        let fd = i.as_ref()?.get(index as usize)?;
        rustix::io::fcntl_dupfd_cloexec(fd, 0).ok()
    })
}
