//! `Dict` — the counterpart of `multiprocessing.Manager().dict()`, without a server: a
//! hash map in shared memory, constant time per operation, growing as Python's does.
//!
//! - [`table`]: one generation's slots and record heap, the lock-free read core.
//! - [`control`]: the fixed segment's region naming the current generation.
//! - [`crash`]: named steps where fault-injection tests kill a writer.
//! - [`view`]: the read-only snapshot `shmkit inspect` prints.

mod control;
// Public as `dict_faults` under `internals` (lib.rs).
#[cfg_attr(not(feature = "internals"), allow(unreachable_pub))]
pub(crate) mod crash;
mod hash;
pub(crate) mod table;
#[cfg(test)]
mod tests;
pub(crate) mod view;

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use shmkit_segment::{Kind, SegmentHandle, TypeFingerprint};

use crate::futex::Deadline;
use crate::lock::{Handle, RobustLock};
use crate::primitive::Ordering;
use crate::{Error, Open, Result};

use control::{CONTROL_SIZE, Control, new_base, table_name};
use crash::{CrashPoint, point};
use table::{HEAP_START, MAX_SLOTS, MIN_SLOTS, Table, record_size};

/// Slots of a new unbounded dict's first table.
const INITIAL_SLOTS: u64 = 64;
/// Heap bytes of a new dict's first table (and the least any table gets): replacing
/// values fills the heap, and each compaction is a new segment (tens of microseconds), so
/// a small dict gets room for a couple of thousand replacements between two.
const INITIAL_HEAP: u64 = 64 * 1024;
/// How often a reader maps the newest generation before giving up (each failure means
/// the generation moved on between reading its number and opening its segment).
const REMAP_ATTEMPTS: u32 = 100;
/// How long an opener waits for the creator to publish the first table.
const INIT_TIMEOUT: Duration = Duration::from_secs(1);

/// A map shared between processes — what `multiprocessing.Manager().dict()` gives
/// Python, without a server process: every operation runs in the caller, on shared
/// memory, in expected constant time whatever the size.
///
/// Keys and values are any serde types (postcard-encoded; keys compare by their
/// encoding). Like Python's dict it is **unbounded**: the table and its storage grow
/// into a new, larger segment that every handle moves to at its next operation. A
/// [bounded](DictBuilder::max_entries) form refuses a new key past a fixed number of
/// entries with [`Error::Full`].
///
/// - **Readers** (`get`, `contains_key`, `len`) take no lock, never wait for a writer
///   and never retry: entries are immutable records that a slot word points at, and a
///   change stores a new slot word.
/// - **Writers** (`insert`, `remove`, ...) share one robust lock: a writer killed at any
///   step leaves every entry whole; the next writer takes the lock over within ~10 ms
///   and repairs the counters. Iteration (`items`, `snapshot`, ...) takes the lock too,
///   so it sees one consistent state.
///
/// ```
/// let d = shmkit_sync::Dict::<u32, String>::anonymous()?;
/// d.insert(1, "one".to_string())?;
/// d.insert(2, "two".to_string())?;
/// assert_eq!(d.get(&1)?, Some("one".to_string()));
/// assert_eq!(d.get_or(&3, "three".to_string())?, "three");
/// assert_eq!(d.remove(&2)?, Some("two".to_string()));
/// assert_eq!(d.len()?, 1);
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
pub struct Dict<K, V> {
    lock: RobustLock,
    /// Prefix of the table segments' names (`<base>.t<generation>`).
    base: String,
    mode: u32,
    /// 0: unbounded.
    max_entries: u64,
    /// The pid that created the dict (it unlinks the tables on drop), or 0.
    creator_pid: u32,
    /// The generation this process maps now.
    table: RwLock<Option<Table>>,
    _kv: PhantomData<KeyValue<K, V>>,
}

impl<K, V> std::fmt::Debug for Dict<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dict")
            .field("name", &self.lock.name())
            .field("tables", &self.base)
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

/// Marks the key and value types without owning either (always Send + Sync).
type KeyValue<K, V> = fn(K, V) -> (K, V);

/// Options for creating a [`Dict`].
///
/// ```
/// use shmkit_sync::{Dict, Error};
/// let d = Dict::<u32, u32>::builder().max_entries(2).anonymous()?;
/// d.insert(1, 10)?;
/// d.insert(2, 20)?;
/// assert!(matches!(d.insert(3, 30), Err(Error::Full { .. })));
/// d.insert(2, 21)?; // replacing a value needs no new entry
/// # Ok::<(), shmkit_sync::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DictBuilder {
    max_entries: u64,
    mode: u32,
}

impl DictBuilder {
    /// Refuse a new key once the dict holds `n` entries ([`Error::Full`]). The slot table
    /// is sized for `n` entries up front and never grows; the record storage still grows
    /// with the size of the values (and is compacted when replaced values pile up).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// File mode of the dict's segments (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Create a named dict.
    pub fn create<K, V>(self, name: &str) -> Result<Dict<K, V>>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        Dict::make(Some(name), self)
    }

    /// Create an anonymous dict (reach it from children through [`Dict::handle`]).
    pub fn anonymous<K, V>(self) -> Result<Dict<K, V>>
    where
        K: Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        Dict::make(None, self)
    }
}

/// Slots for a table that must hold `entries` with room to grow: at most half full.
fn slots_for(entries: u64) -> u64 {
    entries
        .saturating_mul(2)
        .max(MIN_SLOTS)
        .checked_next_power_of_two()
        .unwrap_or(MAX_SLOTS)
        .min(MAX_SLOTS)
}

/// Whether a table of `slots` slots may hold `used` non-empty slots (three quarters).
fn fits(used: u64, slots: u64) -> bool {
    used.saturating_mul(4) <= slots.saturating_mul(3)
}

/// What a write found it needs before it can go on.
enum Step<R> {
    Done(R),
    /// A larger table: room for `entries` more entries and `bytes` more heap.
    Grow {
        entries: u64,
        bytes: u64,
    },
}

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// Create a named, unbounded dict.
    pub fn create(name: &str) -> Result<Self> {
        Self::builder().create(name)
    }

    /// Create an anonymous, unbounded dict (reach it from children through
    /// [`handle`](Self::handle)).
    pub fn anonymous() -> Result<Self> {
        Self::builder().anonymous()
    }

    /// Options: a bound on the entries, the file mode.
    pub fn builder() -> DictBuilder {
        DictBuilder {
            max_entries: 0,
            mode: 0o600,
        }
    }

    fn make(name: Option<&str>, opts: DictBuilder) -> Result<Self> {
        let lock = RobustLock::create(
            name,
            Kind::Dict,
            TypeFingerprint::of::<(K, V)>(),
            CONTROL_SIZE,
            opts.mode,
        )?;
        let base = new_base(name);
        let c = control(&lock);
        c.set_base(&base);
        c.mode.store(opts.mode, Ordering::Relaxed);
        c.max_entries.store(opts.max_entries, Ordering::Relaxed);
        let slots = if opts.max_entries > 0 {
            slots_for(opts.max_entries)
        } else {
            INITIAL_SLOTS
        };
        let first = Table::create(
            lock.name(),
            &table_name(&base, 1),
            1,
            slots,
            INITIAL_HEAP,
            opts.mode,
        )?;
        // SYNC: Release, paired with the Acquire loads of `generation` in `checked` and
        // `read`: an opener that sees generation 1 sees the control fields and the table.
        c.generation.store(1, Ordering::Release);
        Ok(Dict {
            lock,
            base,
            mode: opts.mode,
            max_entries: opts.max_entries,
            creator_pid: std::process::id(),
            table: RwLock::new(Some(first)),
            _kv: PhantomData,
        })
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
        if data < CONTROL_SIZE {
            return Err(Error::Corrupted {
                name: lock.name().to_owned(),
                what: format!("{data} data bytes, smaller than the dict's control region"),
            });
        }
        let c = control(&lock);
        // The creator publishes generation 1 right after making the segment: wait for it,
        // bounded.
        let start = std::time::Instant::now();
        while c.generation.load(Ordering::Acquire) == 0 {
            if start.elapsed() > INIT_TIMEOUT {
                return Err(Error::Corrupted {
                    name: lock.name().to_owned(),
                    what: format!("no table published within {INIT_TIMEOUT:?} of opening"),
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let base = c.base(lock.name())?;
        let mode = c.mode.load(Ordering::Relaxed) & 0o777;
        let max_entries = c.max_entries.load(Ordering::Relaxed);
        Ok(Dict {
            lock,
            base,
            mode,
            max_entries,
            creator_pid: 0,
            table: RwLock::new(None),
            _kv: PhantomData,
        })
    }

    fn control(&self) -> &Control {
        control(&self.lock)
    }

    fn corrupted(&self, what: String) -> Error {
        Error::Corrupted {
            name: self.lock.name().to_owned(),
            what,
        }
    }

    /// Encode a key into `buf` if it fits (no allocation on the read path), else on the
    /// heap.
    fn encode_key<'b>(&self, key: &K, buf: &'b mut [u8; 64]) -> Result<std::borrow::Cow<'b, [u8]>> {
        match postcard::to_slice(key, buf) {
            Ok(bytes) => Ok(std::borrow::Cow::Borrowed(bytes)),
            Err(postcard::Error::SerializeBufferFull) => {
                self.encode(key).map(std::borrow::Cow::Owned)
            }
            Err(e) => Err(self.codec(std::any::type_name::<K>(), e)),
        }
    }

    fn encode<T: Serialize>(&self, x: &T) -> Result<Vec<u8>> {
        postcard::to_allocvec(x).map_err(|e| self.codec(std::any::type_name::<T>(), e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        postcard::from_bytes(bytes).map_err(|e| self.codec(std::any::type_name::<T>(), e))
    }

    fn codec(&self, what: &'static str, e: impl std::fmt::Display) -> Error {
        Error::Codec {
            name: self.lock.name().to_owned(),
            what,
            reason: e.to_string(),
        }
    }

    /// Run `f` on the current generation, mapping it first if this process is behind.
    fn read<R>(&self, f: impl FnOnce(&Table) -> Result<R>) -> Result<R> {
        let mut why = String::new();
        for _ in 0..REMAP_ATTEMPTS {
            // SYNC: Acquire, paired with the Release store of `generation` in `make` and
            // `grow`: the table it names is complete.
            let generation = self.control().generation.load(Ordering::Acquire);
            {
                let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
                if let Some(t) = t.as_ref().filter(|t| t.generation == generation) {
                    return f(t);
                }
            }
            let name = table_name(&self.base, generation);
            match Table::open(self.lock.name(), &name, generation) {
                Ok(t) => *self.table.write().unwrap_or_else(PoisonError::into_inner) = Some(t),
                // The generation moved on (and its segment went) between the load and
                // the open: load it again.
                Err(e) => why = e.to_string(),
            }
        }
        Err(self.corrupted(format!(
            "the current table could not be mapped in {REMAP_ATTEMPTS} attempts: {why}"
        )))
    }

    /// Run `step` under the writers' lock, growing the table and running it again when it
    /// asks for room.
    fn write<R>(
        &self,
        deadline: Deadline,
        mut step: impl FnMut(&Table) -> Result<Step<R>>,
    ) -> Result<R> {
        let inconsistent = self.lock.lock(deadline)?;
        let r = (|| {
            if inconsistent {
                self.recover()?;
                self.lock.mark_consistent();
            }
            for _ in 0..4 {
                match self.read(&mut step)? {
                    Step::Done(r) => return Ok(r),
                    Step::Grow { entries, bytes } => self.grow(entries, bytes, true)?,
                }
            }
            Err(self.corrupted("still no room after growing the table".into()))
        })();
        self.lock.unlock();
        r
    }

    /// After a writer died holding the lock: recount the current table, and remove the
    /// segments of a growth it left half-done (the next generation, not published) or
    /// not cleaned up (the previous one, still linked).
    fn recover(&self) -> Result<()> {
        self.remove_orphans();
        self.read(|t| t.recount().map(drop))
    }

    /// Remove the segments of a growth a dead writer left half-done (the next
    /// generation, never published, so nobody maps it) or not cleaned up (the previous
    /// one, still linked). Under the lock.
    fn remove_orphans(&self) {
        let generation = self.control().generation.load(Ordering::Acquire);
        let _ = shmkit_segment::remove(&table_name(&self.base, generation.saturating_add(1)));
        if generation > 1 {
            let _ = shmkit_segment::remove(&table_name(&self.base, generation - 1));
        }
    }

    /// Replace the current table (under the lock) with a new generation sized for its
    /// live entries plus `entries` more and `bytes` more heap; `keep: false` starts empty
    /// (and never reads the old table, so `clear` works even on a corrupted one).
    fn grow(&self, entries: u64, bytes: u64, keep: bool) -> Result<()> {
        let next = if keep {
            self.read(|old| self.build(Some(old), old.generation, entries, bytes))?
        } else {
            let generation = self.control().generation.load(Ordering::Acquire);
            self.build(None, generation, entries, bytes)?
        };
        let old_name = table_name(&self.base, next.generation - 1);
        // SYNC: Release, paired with the Acquire load in `read`: a process that sees the
        // new generation sees the complete table.
        self.control()
            .generation
            .store(next.generation, Ordering::Release);
        point(CrashPoint::GrowthPublished);
        let _ = shmkit_segment::remove(&old_name);
        point(CrashPoint::GrowthUnlinked);
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Some(next);
        Ok(())
    }

    /// Make generation `generation + 1`, holding `old`'s live entries (if any) with room
    /// for `entries` more and `bytes` more heap. Not yet published.
    fn build(
        &self,
        old: Option<&Table>,
        generation: u64,
        entries: u64,
        bytes: u64,
    ) -> Result<Table> {
        // Measure what is live (checking every record) rather than trusting the
        // counters: the copy below must fit.
        let (mut live, mut live_bytes) = (0u64, 0u64);
        if let Some(old) = old {
            old.for_each_live(|_, r| {
                live += 1;
                live_bytes += r.size();
                Ok(())
            })?;
        }
        let slots = slots_for(live + entries).max(slots_for(self.max_entries));
        if !fits(live + entries, slots) {
            return Err(self.corrupted(format!(
                "{} entries exceed the largest table ({MAX_SLOTS} slots)",
                live + entries
            )));
        }
        // Three times the live bytes: room for twice the live data in replaced values
        // before the next compaction, whose copy is then paid by at least that many
        // inserts (with twice, the copy of a million entries cost ~1 us per insert).
        let heap = (HEAP_START + 3 * (live_bytes + bytes))
            .max(INITIAL_HEAP)
            .next_multiple_of(4096);
        let generation = generation
            .checked_add(1)
            .ok_or_else(|| self.corrupted("generation counter at its end".into()))?;
        let name = table_name(&self.base, generation);
        let create = || Table::create(self.lock.name(), &name, generation, slots, heap, self.mode);
        let new = match create() {
            // Left by a writer that died growing (not published, so nobody maps it).
            Err(Error::Segment(shmkit_segment::Error::AlreadyExists { .. })) => {
                let _ = shmkit_segment::remove(&name);
                create()?
            }
            other => other?,
        };
        point(CrashPoint::GrowthCreated);
        if let Some(old) = old {
            old.for_each_live(|_, r| {
                if new.append_fresh(r.hash, old.key(r), old.value(r))? {
                    Ok(())
                } else {
                    Err(self.corrupted("growth: the new table has no room".into()))
                }
            })?;
        }
        point(CrashPoint::GrowthFilled);
        Ok(new)
    }

    /// Insert or replace, under the lock; returns the old value's bytes.
    fn put(&self, t: &Table, hash: u64, key: &[u8], value: &[u8]) -> Result<Step<Option<Vec<u8>>>> {
        let p = t.probe(hash, key)?;
        let size = record_size(key.len() as u64, value.len() as u64);
        let c = t.counters()?;
        let (slot, new_key, was_tomb) = match (p.hit, p.vacant) {
            (Some(hit), _) => (hit.slot, false, false),
            (None, Some((slot, tomb))) => {
                if self.max_entries != 0 && c.len >= self.max_entries {
                    return Err(Error::Full {
                        name: self.lock.name().to_owned(),
                        needed: (c.len + 1) as usize,
                        capacity: self.max_entries as usize,
                    });
                }
                if !tomb && !fits(c.len + c.tombstones + 1, t.slots) {
                    return Ok(Step::Grow {
                        entries: 1,
                        bytes: size,
                    });
                }
                (slot, true, tomb)
            }
            (None, None) => return Err(self.corrupted("no slot for a new key".into())),
        };
        let Some(offset) = t.alloc(size)? else {
            return Ok(Step::Grow {
                entries: u64::from(new_key),
                bytes: size,
            });
        };
        t.write_record(offset, hash, key, value);
        point(CrashPoint::RecordWritten);
        t.set_heap_used(offset + size);
        point(CrashPoint::HeapBumped);
        t.publish(slot, offset, hash);
        point(CrashPoint::Published);
        match p.hit {
            Some(hit) => {
                t.count(0, 0, hit.record.size());
                Ok(Step::Done(Some(t.value(&hit.record).to_vec())))
            }
            None => {
                t.count(1, -i64::from(was_tomb), 0);
                Ok(Step::Done(None))
            }
        }
    }

    /// Remove under the lock; returns the value's bytes.
    fn take(&self, t: &Table, hash: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(hit) = t.probe(hash, key)?.hit else {
            return Ok(None);
        };
        let value = t.value(&hit.record).to_vec();
        t.bury(hit.slot);
        point(CrashPoint::Tombstoned);
        t.count(-1, 1, hit.record.size());
        Ok(Some(value))
    }

    /// Insert `key`, returning its previous value (like `d[key] = value`, which drops it).
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        let k = self.encode(&key)?;
        let v = self.encode(&value)?;
        let h = hash::hash(&k);
        let old = self.write(Deadline::NEVER, |t| self.put(t, h, &k, &v))?;
        old.map(|b| self.decode(&b)).transpose()
    }

    /// The value of `key` (Python's `d.get(key)`). Takes no lock.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let mut buf = [0; 64];
        let k = self.encode_key(key, &mut buf)?;
        let h = hash::hash(&k);
        self.read(|t| match t.probe(h, &k)?.hit {
            Some(hit) => self.decode(t.value(&hit.record)).map(Some),
            None => Ok(None),
        })
    }

    /// The value of `key`, or `default` (Python's `d.get(key, default)`).
    #[doc(alias = "get")]
    pub fn get_or(&self, key: &K, default: V) -> Result<V> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// Whether `key` is present (Python's `key in d`). Takes no lock.
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        let mut buf = [0; 64];
        let k = self.encode_key(key, &mut buf)?;
        let h = hash::hash(&k);
        self.read(|t| Ok(t.probe(h, &k)?.hit.is_some()))
    }

    /// Remove `key`, returning its value (Python's `d.pop(key, None)`).
    #[doc(alias = "pop")]
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        let k = self.encode(key)?;
        let h = hash::hash(&k);
        let old = self.write(Deadline::NEVER, |t| self.take(t, h, &k).map(Step::Done))?;
        old.map(|b| self.decode(&b)).transpose()
    }

    /// Remove `key`, returning its value or `default` (Python's `d.pop(key, default)`).
    pub fn pop(&self, key: &K, default: V) -> Result<V> {
        Ok(self.remove(key)?.unwrap_or(default))
    }

    /// The value of `key`; if absent, insert `default` and return it (Python's
    /// `d.setdefault(key, default)`), in one step no other writer can split.
    pub fn setdefault(&self, key: K, default: V) -> Result<V> {
        let k = self.encode(&key)?;
        let v = self.encode(&default)?;
        let h = hash::hash(&k);
        let found = self.write(Deadline::NEVER, |t| {
            if let Some(hit) = t.probe(h, &k)?.hit {
                return Ok(Step::Done(Some(t.value(&hit.record).to_vec())));
            }
            Ok(match self.put(t, h, &k, &v)? {
                Step::Done(_) => Step::Done(None),
                Step::Grow { entries, bytes } => Step::Grow { entries, bytes },
            })
        })?;
        match found {
            Some(b) => self.decode(&b),
            None => Ok(default),
        }
    }

    /// Replace the value of `key` with `f(old value)` in one step no other writer can
    /// split (a shared counter: `d.update_with(k, |n| n.unwrap_or(0) + 1)`); returns the
    /// new value.
    pub fn update_with(&self, key: K, f: impl FnOnce(Option<V>) -> V) -> Result<V>
    where
        V: Clone,
    {
        let k = self.encode(&key)?;
        let h = hash::hash(&k);
        let mut f = Some(f);
        let mut new: Option<(V, Vec<u8>)> = None;
        self.write(Deadline::NEVER, |t| {
            if new.is_none() {
                let old = match t.probe(h, &k)?.hit {
                    Some(hit) => Some(self.decode(t.value(&hit.record))?),
                    None => None,
                };
                let f = f
                    .take()
                    .ok_or_else(|| self.corrupted("update_with ran twice".into()))?;
                let v = f(old);
                let bytes = self.encode(&v)?;
                new = Some((v, bytes));
            }
            let Some((_, bytes)) = &new else {
                return Err(self.corrupted("update_with lost its value".into()));
            };
            Ok(match self.put(t, h, &k, bytes)? {
                Step::Done(_) => Step::Done(()),
                Step::Grow { entries, bytes } => Step::Grow { entries, bytes },
            })
        })?;
        new.map(|(v, _)| v)
            .ok_or_else(|| self.corrupted("update_with lost its value".into()))
    }

    /// Insert every pair (Python's `d.update(pairs)`), under one lock: other processes
    /// see each insert as it lands, and no other writer in between.
    pub fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let encoded = pairs
            .into_iter()
            .map(|(k, v)| {
                let k = self.encode(&k)?;
                let v = self.encode(&v)?;
                Ok((hash::hash(&k), k, v))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut next = 0;
        self.write(Deadline::NEVER, |t| {
            while let Some((h, k, v)) = encoded.get(next) {
                match self.put(t, *h, k, v)? {
                    Step::Done(_) => next += 1,
                    Step::Grow { .. } => {
                        // Room for all the rest at once: one growth, not one per pair.
                        let rest = &encoded[next..];
                        return Ok(Step::Grow {
                            entries: rest.len() as u64,
                            bytes: rest
                                .iter()
                                .map(|(_, k, v)| record_size(k.len() as u64, v.len() as u64))
                                .sum(),
                        });
                    }
                }
            }
            Ok(Step::Done(()))
        })
    }

    /// Number of entries. Takes no lock.
    pub fn len(&self) -> Result<usize> {
        self.read(|t| {
            let len = t.len();
            // DESIGN rule 2: a count no table of this size can hold is not passed on.
            if len > t.slots {
                return Err(self.corrupted(format!("{len} entries in {} slots", t.slots)));
            }
            Ok(len as usize)
        })
    }

    /// Whether the dict is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Remove every entry: the dict moves to a new, small table (memory is given back).
    pub fn clear(&self) -> Result<()> {
        let inconsistent = self.lock.lock(Deadline::NEVER)?;
        let r = (|| {
            if inconsistent {
                // The table is dropped: no need to recount it, only to tidy up.
                self.remove_orphans();
            }
            self.grow(0, 0, false)?;
            if inconsistent {
                self.lock.mark_consistent();
            }
            Ok(())
        })();
        self.lock.unlock();
        r
    }

    /// Every entry as `(key, value)`, one consistent state (Python's `d.items()`), in
    /// table order. Holds the writers' lock while it copies; readers go on.
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        self.collect(Deadline::NEVER, |d, t, r| {
            Ok((d.decode(t.key(r))?, d.decode(t.value(r))?))
        })
    }

    /// An iterator over a consistent copy of every entry (see [`items`](Self::items)).
    pub fn iter(&self) -> Result<std::vec::IntoIter<(K, V)>> {
        Ok(self.items()?.into_iter())
    }

    /// Every key (Python's `d.keys()`), one consistent state.
    pub fn keys(&self) -> Result<Vec<K>> {
        self.collect(Deadline::NEVER, |d, t, r| d.decode(t.key(r)))
    }

    /// Every value (Python's `d.values()`), one consistent state.
    pub fn values(&self) -> Result<Vec<V>> {
        self.collect(Deadline::NEVER, |d, t, r| d.decode(t.value(r)))
    }

    fn collect<T>(
        &self,
        deadline: Deadline,
        mut f: impl FnMut(&Self, &Table, &table::Record) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.write(deadline, |t| {
            let mut out = Vec::with_capacity(t.len().min(t.slots) as usize);
            t.for_each_live(|_, r| {
                out.push(f(self, t, r)?);
                Ok(())
            })?;
            Ok(Step::Done(out))
        })
    }

    /// The bound on entries, `None` for an unbounded dict.
    pub fn max_entries(&self) -> Option<u64> {
        (self.max_entries != 0).then_some(self.max_entries)
    }

    /// Entries the current table holds before it grows (three quarters of its slots;
    /// for a bounded dict, the bound).
    pub fn capacity(&self) -> Result<usize> {
        self.read(|t| {
            let table = t.slots / 4 * 3;
            Ok(match self.max_entries {
                0 => table,
                n => n.min(table),
            } as usize)
        })
    }

    /// The table generation: 1 at creation, one more at each growth or `clear`.
    pub fn generation(&self) -> u64 {
        self.control().generation.load(Ordering::Acquire)
    }

    /// How many times the lock was taken over from a dead holder.
    pub fn recoveries(&self) -> u32 {
        self.lock.state().recoveries.load(Ordering::Relaxed)
    }

    /// The segment name.
    pub fn name(&self) -> &str {
        self.lock.name()
    }

    /// A handle to pass to another process.
    pub fn handle(&self) -> Handle<Dict<K, V>> {
        Handle::new(self.lock.handle())
    }

    /// The name of the segment that holds the current table generation (the `table` that
    /// `shmkit inspect` shows for a dict; it changes when the dict grows).
    pub fn table_segment_name(&self) -> String {
        table_name(&self.base, self.generation())
    }

    /// Run `f` while holding the dict's lock, with no other change (for tests of crash
    /// recovery: a process killed inside `f` dies holding the lock). Feature `internals`,
    /// not covered by semver.
    #[cfg(feature = "internals")]
    pub fn hold_lock_while(&self, f: impl FnOnce()) -> Result<()> {
        let mut f = Some(f);
        self.write(Deadline::NEVER, |_| {
            if let Some(f) = f.take() {
                f();
            }
            Ok(Step::Done(()))
        })
    }
}

impl<K, V> Dict<K, V>
where
    K: Serialize + DeserializeOwned + Ord + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    /// A consistent copy of every entry, ordered by key.
    pub fn snapshot(&self) -> Result<BTreeMap<K, V>> {
        self.snapshot_inner(Deadline::NEVER)
    }

    /// Like [`snapshot`](Self::snapshot), or `Err(Timeout)` if the writers' lock is not
    /// free in time.
    pub fn snapshot_timeout(&self, timeout: Duration) -> Result<BTreeMap<K, V>> {
        self.snapshot_inner(Deadline::after(Some(timeout)))
    }

    fn snapshot_inner(&self, deadline: Deadline) -> Result<BTreeMap<K, V>> {
        Ok(self
            .collect(deadline, |d, t, r| {
                Ok((d.decode(t.key(r))?, d.decode(t.value(r))?))
            })?
            .into_iter()
            .collect())
    }
}

fn control(lock: &RobustLock) -> &Control {
    // SAFETY: the data region holds at least CONTROL_SIZE bytes (`make` sized it;
    // `checked` checks it) at a 128-aligned offset; Control is atomics only, valid for any
    // bits; the reference borrows `lock`, which owns the mapping.
    unsafe { &*lock.data_ptr().cast::<Control>() }
}

impl<K, V> Drop for Dict<K, V> {
    fn drop(&mut self) {
        // The creating process removes the tables with its segment, as a segment's
        // creator unlinks it (a fork()ed copy does not). Children still mapping them
        // keep their mappings.
        if self.creator_pid == std::process::id() {
            let generation = control(&self.lock).generation.load(Ordering::Acquire);
            let _ = shmkit_segment::remove(&table_name(&self.base, generation));
            let _ = shmkit_segment::remove(&table_name(&self.base, generation + 1));
        }
    }
}

impl<K, V> Open for Dict<K, V>
where
    K: Serialize + DeserializeOwned + 'static,
    V: Serialize + DeserializeOwned + 'static,
{
    fn open_handle(seg: &SegmentHandle) -> Result<Self> {
        Dict::checked(RobustLock::open_handle(seg)?)
    }
}
