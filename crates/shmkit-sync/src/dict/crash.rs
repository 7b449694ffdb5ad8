//! Named steps of a dict write, where a fault-injection test can make the writer die
//! (`tests/faults.rs`). Not a stable API: hidden from the docs.

use std::sync::OnceLock;

/// A step of an insert, remove or growth, right after which a test may kill the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum CrashPoint {
    /// Insert: the record is written past the heap's end mark, the mark not moved.
    RecordWritten,
    /// Insert: the heap's end mark covers the record; no slot points at it yet.
    HeapBumped,
    /// Insert: the slot word points at the new record; the counters are not updated.
    Published,
    /// Remove: the slot holds a tombstone; the counters are not updated.
    Tombstoned,
    /// Growth: the next generation's segment exists, empty.
    GrowthCreated,
    /// Growth: every live entry is copied into the next generation; not yet published.
    GrowthFilled,
    /// Growth: the control word names the new generation; the old one is still linked.
    GrowthPublished,
    /// Growth: the old generation is unlinked; this process still maps it.
    GrowthUnlinked,
}

static HOOK: OnceLock<fn(CrashPoint)> = OnceLock::new();

/// Install `hook`, called at every [`CrashPoint`] of every dict write in this process
/// (once per process; later calls are ignored).
#[cfg(feature = "internals")]
pub fn set_crash_hook(hook: fn(CrashPoint)) {
    let _ = HOOK.set(hook);
}

#[inline]
pub(crate) fn point(p: CrashPoint) {
    if let Some(hook) = HOOK.get() {
        hook(p);
    }
}
