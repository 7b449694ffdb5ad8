//! A read-only snapshot of a dict for tools (`shmkit inspect`): its generation, entries,
//! capacity and load — taken without registering with the lock or writing anything.

use serde::Serialize;
use shmkit_segment::{Kind, Segment};

use super::control::{CONTROL_SIZE, Control, table_name};
use super::table::Table;
use crate::lock::DATA_OFFSET;
use crate::primitive::Ordering;
use crate::{Error, Result};

/// What `shmkit inspect` shows of a dict.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct DictView {
    /// The table generation (one more at each growth or `clear`).
    pub generation: u64,
    /// The current table's segment.
    pub table: String,
    /// Live entries.
    pub entries: u64,
    /// Slots of the current table.
    pub slots: u64,
    /// Entries the table holds before it grows (three quarters of the slots, or the bound).
    pub capacity: u64,
    /// `entries / slots`.
    pub load_factor: f64,
    /// Slots holding a removed entry (reclaimed at the next growth).
    pub tombstones: u64,
    /// Record storage: bytes used, of which garbage (replaced or removed records), of the
    /// heap's size.
    pub heap_used: u64,
    /// Bytes of records no entry points at.
    pub heap_garbage: u64,
    /// Bytes of the record heap.
    pub heap_bytes: u64,
    /// The bound on entries (`None`: unbounded).
    pub max_entries: Option<u64>,
}

/// Snapshot the dict whose segment is `seg`; `Ok(None)` if it is not a dict.
pub fn inspect_dict(seg: &Segment) -> Result<Option<DictView>> {
    if seg.kind() != Kind::Dict {
        return Ok(None);
    }
    // Invariant restored: the payload holds the lock state and the control region.
    if seg.len() < DATA_OFFSET + CONTROL_SIZE {
        return Err(Error::Corrupted {
            name: seg.name().to_owned(),
            what: format!(
                "{} payload bytes, a dict needs at least {}",
                seg.len(),
                DATA_OFFSET + CONTROL_SIZE
            ),
        });
    }
    // SAFETY: the payload holds DATA_OFFSET + CONTROL_SIZE bytes (checked above): in
    // bounds.
    let c = unsafe { seg.as_ptr().add(DATA_OFFSET) };
    // SAFETY: the control region lies inside the payload (above), 128-aligned at
    // DATA_OFFSET; atomics only (any bit pattern is valid); borrows `seg`.
    let c = unsafe { &*c.cast::<Control>() };
    let generation = c.generation.load(Ordering::Acquire);
    let base = c.base(seg.name())?;
    let name = table_name(&base, generation);
    let t = Table::open(seg.name(), &name, generation)?;
    let counters = t.counters()?;
    let max = c.max_entries.load(Ordering::Relaxed);
    let table_capacity = t.slots / 4 * 3;
    Ok(Some(DictView {
        generation,
        table: name,
        entries: counters.len,
        slots: t.slots,
        capacity: if max == 0 {
            table_capacity
        } else {
            max.min(table_capacity)
        },
        load_factor: counters.len as f64 / t.slots as f64,
        tombstones: counters.tombstones,
        heap_used: counters.heap_used,
        heap_garbage: counters.garbage,
        heap_bytes: t.heap_bytes,
        max_entries: (max != 0).then_some(max),
    }))
}
