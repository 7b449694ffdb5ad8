//! The dict's control region: the part of its (fixed, never replaced) segment after the
//! robust lock, naming the current table generation.
//!
//! | offset | size | what |
//! |---|---|---|
//! | 0 | 8 | `generation`: the current table is `<base>.t<generation>`; 0 until the first is made |
//! | 8 | 8 | `max_entries`: 0 for an unbounded dict |
//! | 16 | 4 | `mode`: file mode of the table segments |
//! | 20 | 4 | `base_len`: bytes of `base` |
//! | 128 | 128 | `base`: the table segments' name prefix (segment-name characters only) |
//!
//! Written once by the creator before it publishes generation 1 (Release); `generation`
//! changes only under the lock, after the new table is complete.

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::{Error, Result};

/// Longest table-name prefix.
pub(crate) const BASE_MAX: usize = 128;

#[repr(C)]
pub(crate) struct Control {
    pub(crate) generation: AtomicU64,
    pub(crate) max_entries: AtomicU64,
    pub(crate) mode: AtomicU32,
    base_len: AtomicU32,
    _reserved: [AtomicU64; 13],
    base: [AtomicU64; BASE_MAX / 8],
}
/// Bytes of the control region.
pub(crate) const CONTROL_SIZE: usize = 256;
#[cfg(not(shmkit_loom))]
const _: () = assert!(size_of::<Control>() == CONTROL_SIZE);
#[cfg(not(shmkit_loom))]
const _: () = assert!(align_of::<Control>() == 8);

impl Control {
    /// Write the table-name prefix (creator, before publishing generation 1).
    pub(crate) fn set_base(&self, base: &str) {
        let bytes = base.as_bytes();
        debug_assert!(bytes.len() <= BASE_MAX);
        let mut padded = [0u8; BASE_MAX];
        padded[..bytes.len()].copy_from_slice(bytes);
        for (w, chunk) in self.base.iter().zip(padded.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            w.store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        self.base_len.store(bytes.len() as u32, Ordering::Relaxed);
    }

    /// The table-name prefix, checked to be a valid segment-name prefix.
    pub(crate) fn base(&self, dict: &str) -> Result<String> {
        let corrupted = |what: String| Error::Corrupted {
            name: dict.to_owned(),
            what,
        };
        let len = self.base_len.load(Ordering::Relaxed) as usize;
        // DESIGN rule 2: the length slices the name; the name becomes a path.
        if len == 0 || len > BASE_MAX {
            return Err(corrupted(format!(
                "table name prefix of {len} bytes, expected 1..={BASE_MAX}"
            )));
        }
        let mut bytes = Vec::with_capacity(BASE_MAX);
        for w in &self.base {
            bytes.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(len);
        let base = String::from_utf8(bytes)
            .ok()
            .filter(|b| shmkit_segment::validate_name(b).is_ok())
            .ok_or_else(|| corrupted("table name prefix is not a segment name".into()))?;
        Ok(base)
    }
}

/// The name of generation `generation`'s table segment.
pub(crate) fn table_name(base: &str, generation: u64) -> String {
    format!("{base}.t{generation}")
}

/// A fresh table-name prefix: the dict's name (shortened) or `shmkit-anon-dict`, and a
/// nonce, so that a dict made again under an old name never meets the old one's tables.
pub(crate) fn new_base(name: Option<&str>) -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded per process from the OS; mixed with time and pid.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let nonce = h.finish();
    // Names are ASCII ([A-Za-z0-9._-], checked when the dict's segment was made), so a
    // byte cut is a char boundary.
    let prefix = name.map_or("shmkit-anon-dict", |n| &n[..n.len().min(96)]);
    format!("{prefix}.dict-{nonce:016x}")
}
