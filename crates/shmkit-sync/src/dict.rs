//! `Dict` — the counterpart of `multiprocessing.Manager().dict()`, without a server.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_segment::{Kind, SegmentHandle, TypeFingerprint};

use crate::futex::Deadline;
use crate::lock::{Handle, RobustLock};
use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::{Error, Open, Result};

/// Layout after the lock state: which of the two areas is current and how long its
/// contents are, then the two areas of `capacity` bytes each.
#[repr(C)]
struct DictHeader {
    /// 0 or 1: the area holding the current contents.
    active: AtomicU32,
    _pad: AtomicU32,
    /// Encoded length of each area's contents.
    len: [AtomicU64; 2],
    /// Entries in each area.
    count: [AtomicU64; 2],
}
const HEADER: usize = 64;
const _: () = assert!(size_of::<DictHeader>() <= HEADER);

/// A fixed-capacity map shared between processes, guarded by a robust lock — what
/// `multiprocessing.Manager().dict()` gives Python, without a server process: every
/// operation happens in the caller, under the lock, on shared memory.
///
/// Keys and values are any serde types (postcard-encoded). The contents live in one of
/// two areas of `capacity` bytes: a change writes the new contents into the other area
/// and then flips one word, so a process killed mid-update leaves the old contents
/// intact, and the next locker simply carries on. An insert that does not fit is
/// [`Error::Full`]. Each operation decodes and re-encodes the whole map: meant for
/// small maps (up to a few thousand entries), as `Manager().dict()` mostly is.
///
/// ```
/// let d = shmkit_sync::Dict::<u32, String>::anonymous(4096)?;
/// d.insert(1, "one".to_string())?;
/// d.insert(2, "two".to_string())?;
/// assert_eq!(d.get(&1)?, Some("one".to_string()));
/// assert_eq!(d.remove(&2)?, Some("two".to_string()));
/// assert_eq!(d.len()?, 1);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Dict<K, V> {
    lock: RobustLock,
    capacity: usize,
    _kv: PhantomData<KeyValue<K, V>>,
}

impl<K, V> std::fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dict")
            .field("name", &self.lock.name())
            .field("capacity", &self.capacity)
            .finish()
    }
}

type Raw = BTreeMap<Vec<u8>, Vec<u8>>;
/// Marks the key and value types without owning either (always Send + Sync).
type KeyValue<K, V> = fn(K, V) -> (K, V);

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned + Ord + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// Create a named dict holding at most `capacity` bytes of encoded contents.
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        Dict::make(Some(name), capacity)
    }

    /// Create an anonymous dict.
    pub fn anonymous(capacity: usize) -> Result<Self> {
        Dict::make(None, capacity)
    }

    fn make(name: Option<&str>, capacity: usize) -> Result<Self> {
        let lock = RobustLock::create(
            name,
            Kind::Dict,
            TypeFingerprint::of::<(K, V)>(),
            HEADER + 2 * capacity,
            0o600,
        )?;
        Dict::checked(lock)
    }

    /// Open a named dict of these key and value types.
    pub fn open(name: &str) -> Result<Self> {
        Dict::checked(RobustLock::open(
            name,
            Kind::Dict,
            TypeFingerprint::of::<(K, V)>(),
        )?)
    }

    fn checked(lock: RobustLock) -> Result<Self> {
        let data = lock.data_len();
        if data < HEADER {
            return Err(Error::Corrupted {
                name: lock.name().to_owned(),
                what: format!("{data} data bytes, smaller than the dict header"),
            });
        }
        Ok(Dict {
            capacity: (data - HEADER) / 2,
            lock,
            _kv: PhantomData,
        })
    }

    fn header(&self) -> &DictHeader {
        // SAFETY: the data region holds at least HEADER bytes (checked), 128-aligned;
        // DictHeader is atomics only, valid for any bits.
        unsafe { &*self.lock.data_ptr().cast::<DictHeader>() }
    }

    fn area(&self, i: usize) -> *mut u8 {
        // SAFETY: HEADER + 2 * capacity <= data_len (by construction of `capacity`).
        unsafe { self.lock.data_ptr().add(HEADER + i * self.capacity) }
    }

    fn corrupted(&self, what: String) -> Error {
        Error::Corrupted {
            name: self.lock.name().to_owned(),
            what,
        }
    }

    fn codec(&self, what: &'static str, e: impl std::fmt::Display) -> Error {
        Error::Codec {
            name: self.lock.name().to_owned(),
            what,
            reason: e.to_string(),
        }
    }

    /// Read the current contents (caller holds the lock).
    fn load(&self) -> Result<Raw> {
        let h = self.header();
        let active = h.active.load(Ordering::Acquire);
        // DESIGN rule 2: `active` and `len` come from shared memory; check both before
        // they address anything.
        if active > 1 {
            return Err(self.corrupted(format!("active area {active}, expected 0 or 1")));
        }
        let len = h.len[active as usize].load(Ordering::Acquire);
        if len > self.capacity as u64 {
            return Err(self.corrupted(format!(
                "contents of {len} bytes exceed capacity {}",
                self.capacity
            )));
        }
        if len == 0 {
            return Ok(Raw::new());
        }
        let mut bytes = vec![0u8; len as usize];
        // SAFETY: len <= capacity (checked), so the area holds these bytes; `bytes` is ours.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.area(active as usize),
                bytes.as_mut_ptr(),
                bytes.len(),
            )
        };
        postcard::from_bytes(&bytes)
            .map_err(|e| self.corrupted(format!("contents do not decode: {e}")))
    }

    /// Write `map` into the inactive area, then make it current (caller holds the lock).
    fn store(&self, map: &Raw) -> Result<()> {
        let bytes = postcard::to_allocvec(map).map_err(|e| self.codec("the dict contents", e))?;
        if bytes.len() > self.capacity {
            return Err(Error::Full {
                name: self.lock.name().to_owned(),
                needed: bytes.len(),
                capacity: self.capacity,
            });
        }
        let h = self.header();
        let next = 1 - h.active.load(Ordering::Acquire).min(1) as usize;
        // SAFETY: bytes.len() <= capacity (checked above).
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.area(next), bytes.len()) };
        h.len[next].store(bytes.len() as u64, Ordering::Release);
        h.count[next].store(map.len() as u64, Ordering::Release);
        // SYNC: Release, paired with the Acquire load of `active` in `load`: a reader
        // that sees the flip sees the complete area. A writer killed before this store
        // leaves the old area current and whole.
        h.active.store(next as u32, Ordering::Release);
        Ok(())
    }

    fn locked<R>(&self, deadline: Deadline, f: impl FnOnce(&Self) -> Result<R>) -> Result<R> {
        let owner_died = self.lock.lock(deadline)?;
        if owner_died {
            // The two-area update is crash-atomic: whatever the dead holder did, the
            // current area is whole. Nothing to repair.
            self.lock.mark_consistent();
        }
        let r = f(self);
        self.lock.unlock();
        r
    }

    fn key(&self, k: &K) -> Result<Vec<u8>> {
        postcard::to_allocvec(k).map_err(|e| self.codec(std::any::type_name::<K>(), e))
    }

    fn value(&self, bytes: &[u8]) -> Result<V> {
        postcard::from_bytes(bytes).map_err(|e| self.codec(std::any::type_name::<V>(), e))
    }

    /// Insert, returning the previous value of `key`.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        let k = self.key(&key)?;
        let v =
            postcard::to_allocvec(&value).map_err(|e| self.codec(std::any::type_name::<V>(), e))?;
        self.locked(Deadline::NEVER, |d| {
            let mut map = d.load()?;
            let old = map.insert(k, v);
            d.store(&map)?;
            old.map(|b| d.value(&b)).transpose()
        })
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let k = self.key(key)?;
        self.locked(Deadline::NEVER, |d| {
            d.load()?.get(&k).map(|b| d.value(b)).transpose()
        })
    }

    /// Remove `key`, returning its value.
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        let k = self.key(key)?;
        self.locked(Deadline::NEVER, |d| {
            let mut map = d.load()?;
            let old = map.remove(&k);
            if old.is_some() {
                d.store(&map)?;
            }
            old.map(|b| d.value(&b)).transpose()
        })
    }

    /// Number of entries.
    pub fn len(&self) -> Result<usize> {
        self.locked(Deadline::NEVER, |d| Ok(d.load()?.len()))
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A consistent copy of every entry, ordered by key (iterate over it).
    pub fn snapshot(&self) -> Result<BTreeMap<K, V>> {
        self.snapshot_timeout_inner(Deadline::NEVER)
    }

    /// Like [`snapshot`](Self::snapshot), or `Err(Timeout)` if the lock is not free in time.
    pub fn snapshot_timeout(&self, timeout: Duration) -> Result<BTreeMap<K, V>> {
        self.snapshot_timeout_inner(Deadline::after(Some(timeout)))
    }

    fn snapshot_timeout_inner(&self, deadline: Deadline) -> Result<BTreeMap<K, V>> {
        self.locked(deadline, |d| {
            d.load()?
                .into_iter()
                .map(|(k, v)| {
                    let k: K = postcard::from_bytes(&k)
                        .map_err(|e| d.codec(std::any::type_name::<K>(), e))?;
                    Ok((k, d.value(&v)?))
                })
                .collect()
        })
    }

    /// Remove every entry.
    pub fn clear(&self) -> Result<()> {
        self.locked(Deadline::NEVER, |d| d.store(&Raw::new()))
    }

    /// Bytes of encoded contents the dict can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many times the lock was taken over from a dead holder.
    pub fn recoveries(&self) -> u32 {
        self.lock.state().recoveries.load(Ordering::Relaxed)
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Dict<K, V>> {
        Handle::new(self.lock.handle())
    }

    /// Run `f` while holding the dict's lock, with no other change (for tests of crash
    /// recovery: a process killed inside `f` dies holding the lock).
    #[doc(hidden)]
    pub fn hold_lock_while(&self, f: impl FnOnce()) -> Result<()> {
        self.locked(Deadline::NEVER, |_| {
            f();
            Ok(())
        })
    }
}

impl<K, V> Open for Dict<K, V>
where
    K: Serialize + DeserializeOwned + Ord + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Dict::checked(RobustLock::open_handle(seg)?)
    }
}
